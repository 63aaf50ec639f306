// The GGUF reader on files written by the `gguf` Python package (scripts/fixtures/make_gguf_tokenizer_cases.py):
// metadata of every kind, tensor layout, and a clear error (never a crash) for every truncation.
import Foundation
import InternCore
import Testing

private let ggufFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/gguf")

@Suite struct GGUFFileTests {
    let tiny = ggufFixtures.appendingPathComponent("tiny-tensors.gguf").path
    let vocab = ggufFixtures.appendingPathComponent("smollm2-vocab.gguf").path

    @Test func readsMetadataAndTensorLayout() throws {
        let file = try GGUFFile(path: tiny)
        #expect(file.version == 3)
        #expect(file["test.answer"] == .uint(42))
        #expect(file["test.list"]?.arrayValue?.compactMap(\.intValue) == [1, 2, 3])
        #expect(file["test.name"]?.stringValue == "tiny ✓")
        #expect(file["general.architecture"]?.stringValue == "llama")
        #expect(file.tensors.map(\.name) == ["a.f32", "b.f16", "c.q8_0"])
        let q = try #require(file.tensorInfo("c.q8_0"))
        #expect(q.type == .q8_0 && q.dimensions == [64, 4] && q.byteRange.count == 4 * 2 * 34)
        let a = try #require(file.tensorInfo("a.f32"))
        #expect(a.dimensions == [5, 3] && a.byteRange.count == 60 && a.byteRange.lowerBound % file.alignment == 0)
        #expect(q.byteRange.upperBound <= (try FileManager.default.attributesOfItem(atPath: tiny)[.size] as! Int))
    }

    @Test func readsAVocabularyOnlyFile() throws {
        let file = try GGUFFile(path: vocab)
        #expect(file.tensors.isEmpty)
        #expect(file["tokenizer.ggml.model"]?.stringValue == "gpt2")
        #expect(file["tokenizer.ggml.pre"]?.stringValue == "smollm")
        #expect(file["tokenizer.ggml.tokens"]?.arrayValue?.count == 49152)
        #expect(file["tokenizer.ggml.merges"]?.arrayValue?.count == 48900)
        #expect(file["llama.block_count"]?.intValue == 30)
        #expect(file["llama.rope.freq_base"]?.doubleValue == 100000)
    }

    @Test func everyTruncationIsAnError() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: tiny))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cut = dir.appendingPathComponent("cut.gguf")
        // Past the last tensor's data only alignment padding remains, and a file cut there is still valid.
        let end = try GGUFFile(path: tiny).tensors.map(\.byteRange.upperBound).max()!
        for length in stride(from: 0, to: end, by: 7) + [end - 1] {
            try bytes.prefix(length).write(to: cut)
            #expect(throws: CheckpointError.self, "length \(length)") { try GGUFFile(path: cut.path) }
        }
    }

    @Test func badMagicAndVersionAreNamed() throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: tiny))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.gguf")
        bytes[4] = 9
        try bytes.write(to: file)
        #expect(throws: CheckpointError.malformedGGUF(file: "bad.gguf", offset: 4, reason: "unsupported GGUF version 9 (2 and 3 are supported)")) {
            try GGUFFile(path: file.path)
        }
        bytes[0] = UInt8(ascii: "X")
        try bytes.write(to: file)
        #expect(throws: CheckpointError.malformedGGUF(file: "bad.gguf", offset: 0, reason: "bad magic: not a GGUF file")) {
            try GGUFFile(path: file.path)
        }
        #expect(throws: CheckpointError.fileNotFound(path: dir.appendingPathComponent("none.gguf").path)) {
            try GGUFFile(path: dir.appendingPathComponent("none.gguf").path)
        }
    }
}
