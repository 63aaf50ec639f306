import Foundation

@testable import InternData

/// Fixture paths (found from this file's path) and scratch files for the data-pipeline tests.
enum DataFixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func fixture(_ name: String) -> String {
        repositoryRoot.appendingPathComponent("Tests/Fixtures/data/\(name)").path
    }

    static func asset(_ name: String) -> String {
        repositoryRoot.appendingPathComponent("Assets/\(name)").path
    }

    /// A fresh empty folder under the system temporary directory.
    static func scratchDirectory() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("interndata-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    static func write(_ text: String, to path: String) {
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    static func readDocuments(_ path: String) throws -> [Document] {
        let reader = DocumentReader(paths: [path], strict: true)
        var docs: [Document] = []
        while let d = try reader.next() { docs.append(d) }
        return docs
    }

    // MARK: Texts that pass every rule

    static let englishLines = [
        "The river town woke slowly under a pale autumn sky, and the bakers were the first to open their doors.",
        "Children walked to school along the old stone bridge while their parents argued about the price of bread.",
        "A small museum near the harbour keeps letters written by sailors who crossed the ocean two centuries ago.",
        "Visitors often spend an afternoon reading them, because each letter describes storms, friendships and strange ports.",
        "The mayor has promised to repair the lighthouse before winter, although nobody believes the budget will allow it.",
        "In the evenings, musicians gather in the square and play songs that their grandparents taught them.",
        "Most residents say that the town has changed very little, and they seem quite happy with that.",
        "Tourists who arrive by train usually stay for one night, then continue north toward the mountains.",
    ]
    static var english: String { englishLines.joined(separator: "\n") }

    static let chineseLines = [
        "这个小镇位于河流的下游，每天早上面包店最先开门。",
        "孩子们沿着古老的石桥走向学校，父母们在讨论面包的价格。",
        "港口附近有一座小博物馆，里面保存着两百年前水手写的信件。",
        "游客常常在这里度过一个下午，因为每封信都讲述了风暴、友谊和陌生的港口。",
        "镇长承诺在冬天之前修好灯塔，但是没有人相信预算足够。",
        "晚上，音乐家们聚集在广场上，演奏祖父母教给他们的歌曲。",
    ]
    static var chinese: String { chineseLines.joined(separator: "\n") }
}
