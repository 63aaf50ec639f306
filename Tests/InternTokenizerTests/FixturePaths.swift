import Foundation

/// Test fixtures live in the repository (Tests/Fixtures, Assets), found from this file's path.
enum FixturePaths {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let internLM2TokenizerModel = repositoryRoot.appendingPathComponent("Assets/internlm2/tokenizer.model")
    static func tokenizerFixture(_ name: String) -> URL {
        repositoryRoot.appendingPathComponent("Tests/Fixtures/tokenizer/\(name)")
    }

    /// Reads a JSON Lines file. JSONDecoder, not JSONSerialization: the latter drops a leading U+FEFF
    /// inside string values on Linux.
    static func jsonLines<T: Decodable>(_ url: URL, as type: T.Type) throws -> [T] {
        let data = try Data(contentsOf: url)
        return try data.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(T.self, from: Data($0)) }
    }
}
