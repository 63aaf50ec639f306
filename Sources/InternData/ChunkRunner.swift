// The pipeline's parallel path over JSON Lines: the reading thread only cuts the input into chunks of whole
// lines and hands each to a worker, which splits and parses the lines, runs the stage chain on every document
// (language tags, filters, dedup keys) and serializes the survivors into the chunk's own buffer. The reading
// thread takes finished chunks back in input order, adds their counts up exactly as `StageRunner.collect`
// does and writes their buffers, so the output and the report are the same bytes whatever the number of
// threads or the chunk size. A chunk holds a few hundred documents of web text, so the per-chunk hand-off is
// cheap and the two cores stay busy.
import Foundation

/// How the lines of a chunk become documents.
struct LineParsing: Sendable {
    var textField = "text"
    var idField = "id"
    var urlField = "url"
    /// The format stage's conventions (ids "name:line" and the `source` from the file name, input bytes
    /// counted per line) rather than `DocumentReader`'s (ids "path:line", no source).
    var formatStage = true
    /// The `source` of documents without one (nil: the input file's name).
    var source: String?
    /// Only lines whose 1-based number, counted across all inputs, is set here are read (nil: every line).
    var keptLines: [Bool]?
}

/// One chunk of whole lines of one file, and what a worker made of it. A worker fills the results; the
/// reading thread reads them after `done`.
final class LineChunk: @unchecked Sendable {
    let path: String
    let idPrefix: String
    let source: String
    /// The 1-based number, in its file, of the chunk's first line; and counted across all inputs.
    let firstLine: Int
    let firstGlobalLine: Int
    let bytes: [UInt8]
    /// Thrown by the reader after this chunk's lines (a damaged compressed stream).
    var readError: DatasetError?

    var outcomes: [StageRunner.Outcome] = []
    var bad: [DatasetError] = []
    /// The survivors as JSON Lines.
    var output: [UInt8] = []
    /// Bytes of the lines (each line and one newline, as the format stage counts) and text bytes read.
    var bytesIn = 0
    var textBytes = 0
    let done = DispatchGroup()

    init(path: String, idPrefix: String, source: String, firstLine: Int, firstGlobalLine: Int, bytes: [UInt8]) {
        self.path = path
        self.idPrefix = idPrefix
        self.source = source
        self.firstLine = firstLine
        self.firstGlobalLine = firstGlobalLine
        self.bytes = bytes
    }
}

extension StageRunner {
    /// What reading JSON Lines in chunks adds to the stage counts.
    struct ChunkTotals {
        var documents = 0
        var bytesIn = 0
        var textBytes = 0
        var bad = BadInputLog()
    }

    /// Reads `paths` (JSON Lines, plain or compressed) in chunks of about `chunkSize` bytes, runs the chain on
    /// every document on `threads` workers and writes the survivors to `writer` in input order; returns one
    /// `StageStats` per filter. Bad lines are counted in `totals` (thrown when `strict`).
    mutating func runChunks(
        paths: [String], parsing: LineParsing, writer: DocumentWriter, strict: Bool, chunkSize: Int = 1 << 20,
        totals: inout ChunkTotals, progress: ((Int) -> Void)? = nil
    ) throws(DatasetError) -> [StageStats] {
        rng = SplitMix64(seed: seed)
        started = true
        // The workers get a copy holding only the chain (a copy of `self` would share the growing arrays).
        var chain = StageRunner(filters: filters, threads: threads)
        chain.tagLanguage = tagLanguage
        chain.dedup = dedup
        let worker = UncheckedSendable(chain)
        // Threads of their own: the reading thread may be one of the dispatch pool's, which is as wide as the
        // machine, so pool workers would get one core less while it waits.
        let queue = ChunkQueue()
        if threads > 1 {
            for _ in 0..<threads {
                Thread {
                    while let chunk = queue.next() {
                        worker.value.process(chunk, parsing: parsing)
                        chunk.done.leave()
                    }
                }.start()
            }
        }
        defer { queue.close() }
        var inFlight: [LineChunk] = []
        let maxInFlight = threads * 2 + 1

        func collect(_ chunk: LineChunk) throws(DatasetError) {
            chunk.done.wait()
            for e in chunk.bad {
                if strict { throw e }
                totals.bad.record(e)
            }
            let before = totals.documents
            totals.documents += chunk.outcomes.count
            totals.bytesIn += chunk.bytesIn
            totals.textBytes += chunk.textBytes
            for o in chunk.outcomes { try record(o) }
            try writer.write(serialized: chunk.output, documents: chunk.outcomes.count(where: { $0.finalTextBytes >= 0 }))
            if let progress, totals.documents / 1000 > before / 1000 {
                for n in stride(from: (before / 1000 + 1) * 1000, through: totals.documents, by: 1000) { progress(n) }
            }
            if let e = chunk.readError {
                if strict { throw e }
                totals.bad.record(e)
            }
        }

        var globalLine = 0
        for path in paths {
            let reader = try ByteReader(path: path)
            let name = DocumentFormatter.baseName(path)
            while true {
                let lines: (bytes: [UInt8], lines: Int)?
                var readError: DatasetError?
                do { lines = try reader.nextLines(size: chunkSize) } catch {
                    lines = nil
                    readError = error
                }
                if lines == nil && readError == nil { break }
                let chunk = LineChunk(
                    path: path, idPrefix: parsing.formatStage ? name : path, source: parsing.source ?? name,
                    firstLine: reader.lineNumber - (lines?.lines ?? 0) + 1, firstGlobalLine: globalLine + 1,
                    bytes: lines?.bytes ?? [])
                chunk.readError = readError
                globalLine += lines?.lines ?? 0
                if threads == 1 {
                    // One thread means one: no reading ahead in parallel.
                    chain.process(chunk, parsing: parsing)
                    try collect(chunk)
                } else {
                    chunk.done.enter()
                    queue.add(chunk)
                    inFlight.append(chunk)
                    while inFlight.count >= maxInFlight { try collect(inFlight.removeFirst()) }
                }
                if lines == nil { break }
            }
        }
        while !inFlight.isEmpty { try collect(inFlight.removeFirst()) }
        return stats
    }

    /// Runs the chain over JSON Lines files (plain or compressed) as `run(next: DocumentReader(paths:
    /// strict:).next, write:)` does, with the same output, counts and bad records, but with the lines parsed
    /// and the documents processed on worker threads of their own (the single-stage commands); returns one
    /// `StageStats` per filter and adds the bad records to `bad`.
    public mutating func runJSONLines(paths: [String], strict: Bool, writer: DocumentWriter, bad: inout BadInputLog)
        throws(DatasetError) -> [StageStats]
    {
        var parsing = LineParsing()
        parsing.formatStage = false
        var totals = ChunkTotals()
        totals.bad = bad
        let stats = try runChunks(paths: paths, parsing: parsing, writer: writer, strict: strict, totals: &totals)
        bad = totals.bad
        return stats
    }

    /// Parses the chunk's lines and runs the chain on each document (on a worker thread).
    func process(_ chunk: LineChunk, parsing: LineParsing) {
        var scratch = Scratch()
        chunk.bytes.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return }
            var at = 0
            var line = chunk.firstLine
            while at < b.count {
                let newline = memchr(base + at, 0x0A, b.count - at).map { base.distance(to: $0.assumingMemoryBound(to: UInt8.self)) }
                var end = newline ?? b.count
                let next = end + 1
                // A trailing CR is dropped, as `ByteReader.nextLine` does.
                if end > at && b[end - 1] == 0x0D { end -= 1 }
                defer {
                    at = next
                    line += 1
                }
                if parsing.formatStage { chunk.bytesIn += end - at + 1 }
                if let kept = parsing.keptLines {
                    let global = chunk.firstGlobalLine + line - chunk.firstLine
                    guard global < kept.count, kept[global] else { continue }
                }
                let text = UnsafeBufferPointer(rebasing: b[at..<end])
                if text.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                var doc: Document
                do throws(JSONLineError) {
                    let fields = try JSONLine.parseObject(text)
                    doc = try Document(
                        fields: fields, textField: parsing.textField, idField: parsing.idField, urlField: parsing.urlField,
                        defaultID: "\(chunk.idPrefix):\(line)")
                } catch {
                    chunk.bad.append(.badRecord(file: chunk.path, line: line, message: error.description))
                    continue
                }
                if parsing.formatStage && doc.source.isEmpty { doc.source = chunk.source }
                chunk.textBytes += doc.text.utf8.count
                var o = process(doc, scratch: &scratch)
                if let f = o.final {
                    f.appendJSONLine(to: &chunk.output)
                    o.final = nil
                }
                chunk.outcomes.append(o)
            }
        }
    }
}

/// Chunks waiting for a worker, first in first out.
final class ChunkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var waiting: [LineChunk] = []
    private var closed = false

    func add(_ chunk: LineChunk) {
        condition.lock()
        waiting.append(chunk)
        condition.signal()
        condition.unlock()
    }

    /// The oldest waiting chunk; nil once the queue is closed and empty. (A handful wait at a time.)
    func next() -> LineChunk? {
        condition.lock()
        defer { condition.unlock() }
        while waiting.isEmpty && !closed { condition.wait() }
        return waiting.isEmpty ? nil : waiting.removeFirst()
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
