import Foundation
import Testing

@testable import InternData

@Suite("Pipeline: chunked parallel reading equals the one-document-at-a-time path")
struct ChunkRunnerTests {
    /// JSON Lines of real web pages, each also repeated with a small edit (near duplicates for dedup) and once
    /// exactly, with fixture texts (PII, a menu), broken and blank lines, a CRLF line, and no newline at the end.
    func writeInput(_ path: String) throws -> Int {
        let pages = try DataFixtures.readDocuments(DataFixtures.fixture("web_sample.jsonl.gz"))
        var lines: [String] = []
        for (k, p) in pages.enumerated() {
            lines.append(String(p.jsonLine.dropLast()))
            var edited = p
            edited.id += "-edit"
            edited.text = "Note: " + edited.text
            lines.append(String(edited.jsonLine.dropLast()))
            if k % 3 == 0 { lines.append(String(p.jsonLine.dropLast())) }
            if k == 2 { lines.append(#"{"text": "broken"#) }
            if k == 4 { lines.append("   ") }
            if k == 5 { lines.append(#"{"id": 5, "title": "no text field"}"#) }
        }
        lines.append(String(Document(id: "mail", text: DataFixtures.english + "\nMail me at someone@example.org today.").jsonLine.dropLast()) + "\r")
        lines.append(#"{"text": "Home\nNews\nLogin", "url": "https://example.com/menu", "tags": ["a", 1]}"#)
        lines.append(String(Document(id: "zh", text: DataFixtures.chinese).jsonLine.dropLast()))
        let text = lines.joined(separator: "\n")  // the last line has no newline
        if path.hasSuffix(".gz") {
            let w = try AtomicWriter(path: path)
            try w.write(text)
            try w.finish()
        } else {
            DataFixtures.write(text, to: path)
        }
        return text.utf8.count
    }

    func config(input: String, output: String) -> PipelineConfig {
        var config = PipelineConfig()
        config.inputs = [input]
        config.output = output
        config.safety.wordListFiles = [DataFixtures.asset("safety/ldnoobw/en"), DataFixtures.asset("safety/ldnoobw/zh")]
        config.quality.model = DataFixtures.asset("quality/web-quality.ikqm")
        config.quality.threshold = 0.05
        return config
    }

    /// The report as JSON without its timings.
    func reportWithoutTimes(_ report: PipelineReport) throws -> String {
        var r = report
        r.seconds = 0
        r.megabytesPerSecond = 0
        for k in r.stages.indices { r.stages[k].seconds = 0 }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(r), as: UTF8.self)
    }

    func run(_ config: PipelineConfig, threads: Int, chunkSize: Int, chunked: Bool) throws -> (output: Data, report: String) {
        var p = Pipeline(config: config)
        p.threads = threads
        p.chunkSize = chunkSize
        p.readsInChunks = chunked
        let report = try p.run()
        return (try Data(contentsOf: URL(fileURLWithPath: config.output)), try reportWithoutTimes(report))
    }

    @Test(arguments: ["in.jsonl", "in.jsonl.gz"])
    func sameOutputAndReportForAnyThreadsAndChunkSize(inputName: String) throws {
        let dir = DataFixtures.scratchDirectory()
        let input = dir + "/" + inputName
        let size = try writeInput(input)
        let reference = try run(config(input: input, output: dir + "/ref.jsonl"), threads: 1, chunkSize: 1 << 20, chunked: false)
        let report = reference.report
        #expect(report.contains(#""badInputCount":2"#))
        #expect(report.contains(#""stage":"dedup""#) && report.contains("near_duplicate") && report.contains("exact_duplicate"))
        // Chunks smaller than one page (every page spans a boundary), a few pages, and the whole input at once.
        for threads in [1, 2, 3] {
            for chunkSize in [100, 20_000, size + 1] {
                let output = dir + "/out-\(threads)-\(chunkSize).jsonl"
                let got = try run(config(input: input, output: output), threads: threads, chunkSize: chunkSize, chunked: true)
                #expect(got.output == reference.output, "threads \(threads), chunk size \(chunkSize)")
                #expect(got.report == reference.report, "threads \(threads), chunk size \(chunkSize)")
            }
        }
    }

    @Test func badLinesAreReportedWithTheirLineNumbers() throws {
        let dir = DataFixtures.scratchDirectory()
        let input = dir + "/in.jsonl"
        _ = try writeInput(input)
        var p = Pipeline(config: config(input: input, output: dir + "/out.jsonl"))
        p.threads = 2
        p.chunkSize = 300
        let report = try p.run()
        // Pages 0 and 3 take three lines (an exact copy), the others two: the broken line after page 2 is line 8,
        // the blank one after page 4 line 14 (skipped), the one without a text field after page 5 line 17.
        #expect(report.badInputCount == 2)
        #expect(report.badInputExamples.count == 2)
        #expect(report.badInputExamples[0].hasPrefix(input + ":8: "))
        #expect(report.badInputExamples[1].hasPrefix(input + ":17: ") && report.badInputExamples[1].contains("missing text field"))
        p.strict = true
        #expect {
            _ = try p.run()
        } throws: { e in
            guard case let .badRecord(file, line, _) = e as? DatasetError else { return false }
            return file == input && line == 8
        }
    }

    @Test func damagedGzipKeepsTheLinesBeforeTheDamage() throws {
        let dir = DataFixtures.scratchDirectory()
        let whole = dir + "/whole.jsonl.gz"
        _ = try writeInput(whole)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        let input = dir + "/cut.jsonl.gz"
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: input))
        var stages = config(input: input, output: dir + "/ref.jsonl")
        stages.stages = ["format", "clean"]
        let reference = try run(stages, threads: 1, chunkSize: 1 << 20, chunked: false)
        stages.output = dir + "/out.jsonl"
        let got = try run(stages, threads: 2, chunkSize: 5_000, chunked: true)
        #expect(got.output == reference.output)
        #expect(got.report == reference.report)
        #expect(reference.report.contains("gzip data ends early"))
    }

    @Test func nextLinesCutsAfterNewlinesAndKeepsLongLinesWhole() throws {
        let dir = DataFixtures.scratchDirectory()
        let path = dir + "/lines.txt"
        let text = "a\nbb\n" + String(repeating: "x", count: 50) + "\r\nccc\n\ndd"
        DataFixtures.write(text, to: path)
        let reader = try ByteReader(path: path)
        var joined: [UInt8] = []
        var chunks: [[UInt8]] = []
        var lines = 0
        while let c = try reader.nextLines(size: 4) {
            chunks.append(c.bytes)
            joined += c.bytes
            lines += c.lines
        }
        #expect(joined == Array(text.utf8))
        #expect(lines == 6 && reader.lineNumber == 6)
        // Cut after the first newline at or past 4 bytes; the 52-byte line comes whole; the last line has no newline.
        let x50 = String(repeating: "x", count: 50)
        #expect(chunks.map { String(decoding: $0, as: UTF8.self) } == ["a\nbb\n", x50 + "\r\n", "ccc\n", "\ndd"])
    }
}
