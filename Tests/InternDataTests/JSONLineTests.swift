import Foundation
import Testing

@testable import InternData

@Suite("JSON Lines parsing and writing")
struct JSONLineTests {
    @Test func decodesEscapesSurrogatesAndKeepsLeadingBOM() throws {
        let line = #"{"id": 7, "text": "\ufeffa\"b\\c\n\u00e9\ud83d\ude00/", "meta": {"k": [1, 2.5e3, true, null]}}"#
        let fields = try JSONLine.parseObject(line)
        #expect(fields.map(\.key) == ["id", "text", "meta"])
        #expect(fields[0].value == .raw("7"))
        #expect(fields[1].value == .string("\u{FEFF}a\"b\\c\né😀/"))
        #expect(fields[2].value == .raw(#"{"k": [1, 2.5e3, true, null]}"#))
    }

    @Test(arguments: [
        #"{"text": "unterminated}"#, #"{"text": "x",}"#, #"["not", "an", "object"]"#, #"{"text": "x"} trailing"#,
        #"{"text": "\ud800"}"#, #"{"text": 01x}"#, #"{"text" "x"}"#,
    ])
    func rejectsBrokenJSON(line: String) {
        #expect(throws: JSONLineError.self) { try JSONLine.parseObject(line) }
    }

    @Test func rejectsInvalidUTF8() {
        var bytes = Array(#"{"text": "ab"}"#.utf8)
        bytes.insert(0xFF, at: 11)
        #expect(throws: JSONLineError.self) { try JSONLine.parseObject(ArraySlice(bytes)) }
    }

    @Test func documentRoundTripsThroughJSONDecoder() throws {
        var doc = Document(id: "a\"1", text: "\u{FEFF}line one\nline\ttwo \u{1} 中文", source: "s", lang: "zh", url: "http://x/")
        doc.setMeta("title", raw: JSONWriter.quoted("T"))
        doc.setMeta("n", raw: "3")
        struct Row: Decodable { let id, text, source, lang, url: String; let meta: [String: AnyDecodable] }
        struct AnyDecodable: Decodable { init(from decoder: any Decoder) throws {} }
        let row = try JSONDecoder().decode(Row.self, from: Data(doc.jsonLine.utf8))
        #expect(row.text == doc.text)
        #expect(row.id == doc.id)
        #expect(row.meta.keys.sorted() == ["n", "title"])
        let parsed = try Document(fields: JSONLine.parseObject(String(doc.jsonLine.dropLast())), defaultID: "x")
        #expect(parsed == doc)
    }

    @Test func extraFieldsMoveIntoMeta() throws {
        let fields = try JSONLine.parseObject(#"{"content": "hello", "title": "T", "score": 0.5}"#)
        let doc = try Document(fields: fields, textField: "content", defaultID: "f:1")
        #expect(doc.text == "hello")
        #expect(doc.id == "f:1")
        #expect(doc.meta == #"{"title": "T", "score": 0.5}"#)
        #expect(throws: JSONLineError.self) { try Document(fields: fields, textField: "text", defaultID: "f:1") }
    }
}

@Suite("Byte input and output")
struct ByteIOTests {
    @Test func gzipRoundTripWithLongAndEmptyLines() throws {
        let dir = DataFixtures.scratchDirectory()
        let path = dir + "/x.jsonl.gz"
        let long = String(repeating: "é", count: 3_000_000)
        let w = try AtomicWriter(path: path)
        try w.write("first\n\n" + long + "\r\nlast")
        #expect(!FileManager.default.fileExists(atPath: path))  // nothing until finish
        try w.finish()
        let r = try ByteReader(path: path)
        var lines: [String] = []
        while let l = try r.nextLine() { lines.append(String(decoding: l, as: UTF8.self)) }
        #expect(lines.count == 4)
        #expect(lines[0] == "first" && lines[1] == "" && lines[2] == long && lines[3] == "last")
    }

    @Test func zstdRoundTripAndTruncation() throws {
        let dir = DataFixtures.scratchDirectory()
        let path = dir + "/x.jsonl.zst"
        let docs = (0..<3000).map { Document(id: "d\($0)", text: "zstd document \($0) 中文 \(String(repeating: "x", count: $0 % 97))") }
        let w = try DocumentWriter(path: path)
        for d in docs { try w.write(d) }
        try w.finish()
        #expect(try DataFixtures.readDocuments(path) == docs)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        FileManager.default.createFile(atPath: path, contents: data.prefix(data.count - 10))
        #expect {
            _ = try DataFixtures.readDocuments(path)
        } throws: { e in
            guard case let .corrupt(file, _, message) = e as? DatasetError else { return false }
            return file == path && message.contains("truncated")
        }
    }

    @Test func readsConcatenatedGzipMembers() throws {
        let dir = DataFixtures.scratchDirectory()
        let a = dir + "/a.gz", b = dir + "/b.gz"
        for (p, t) in [(a, "one\n"), (b, "two\n")] {
            let w = try AtomicWriter(path: p)
            try w.write(t)
            try w.finish()
        }
        var joined = try Data(contentsOf: URL(fileURLWithPath: a))
        joined.append(try Data(contentsOf: URL(fileURLWithPath: b)))
        let both = dir + "/both.gz"
        FileManager.default.createFile(atPath: both, contents: joined)
        let r = try ByteReader(path: both)
        #expect(String(decoding: try r.readAll(), as: UTF8.self) == "one\ntwo\n")
    }

    @Test func truncatedGzipIsReportedWithTheFile() throws {
        let dir = DataFixtures.scratchDirectory()
        let path = dir + "/t.jsonl.gz"
        let w = try AtomicWriter(path: path)
        for k in 0..<2000 { try w.write(#"{"text": "document number \#(k) with some words"}"# + "\n") }
        try w.finish()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        FileManager.default.createFile(atPath: path, contents: data.prefix(data.count / 2))
        let strict = DocumentReader(paths: [path], strict: true)
        #expect {
            while try strict.next() != nil {}
        } throws: { error in
            guard case let .corrupt(file, _, message) = error as? DatasetError else { return false }
            return file == path && message.contains("truncated")
        }
        let lenient = DocumentReader(paths: [path])
        var n = 0
        while try lenient.next() != nil { n += 1 }
        #expect(n > 100 && n < 2000)
        #expect(lenient.bad.count >= 1)
    }

    @Test func badLinesAreCountedWithFileAndLine() throws {
        let dir = DataFixtures.scratchDirectory()
        let path = dir + "/bad.jsonl"
        var bytes = Array("{\"text\": \"good one\"}\n{\"text\": broken}\n{\"id\": \"no text\"}\n".utf8)
        bytes += [0x7B, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D, 0x0A]  // invalid UTF-8
        bytes += Array("{\"text\": \"good two\"}\n".utf8)
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let reader = DocumentReader(paths: [path])
        var texts: [String] = []
        while let d = try reader.next() { texts.append(d.text) }
        #expect(texts == ["good one", "good two"])
        #expect(reader.bad.count == 3)
        #expect(reader.bad.examples[0].hasPrefix("\(path):2: "))
        #expect(reader.bad.examples[1].hasPrefix("\(path):3: missing text field"))
        #expect(reader.bad.examples[2].contains(":4: invalid UTF-8"))
        let strict = DocumentReader(paths: [path], strict: true)
        #expect(throws: DatasetError.badRecord(file: path, line: 2, message: "unexpected character at byte 10")) {
            while try strict.next() != nil {}
        }
    }

    @Test func shardsPartitionTheRecords() throws {
        let dir = DataFixtures.scratchDirectory()
        let path = dir + "/s.jsonl"
        DataFixtures.write((0..<10).map { #"{"id": "\#($0)", "text": "t"}"# }.joined(separator: "\n"), to: path)
        var seen: [String] = []
        for k in 0..<3 {
            let r = DocumentReader(paths: [path], shard: try Shard(parsing: "\(k)/3"))
            while let d = try r.next() { seen.append(d.id) }
        }
        #expect(seen.sorted() == (0..<10).map(String.init).sorted())
        #expect(throws: DatasetError.self) { try Shard(parsing: "3/3") }
    }
}
