// `intern data`: the pretraining data pipeline (format → clean → dedup → safety → quality, and `run` for
// all of them from one config). Each subcommand reads `--input` and writes `--output` atomically; the work
// is in the InternData library.
import ArgumentParser
import Foundation
import InternData

struct DataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Pretraining data pipeline: format, clean, dedup, safety, quality, run.",
        subcommands: [DataFormatCommand.self, DataCleanCommand.self, DataDedupCommand.self]
    )
}

/// Options every stage shares.
struct DataIOOptions: ParsableArguments {
    @Option(name: .long, parsing: .upToNextOption, help: "Input files (.jsonl, .jsonl.gz; format also takes .txt, .csv, .warc[.gz]).")
    var input: [String]

    @Option(name: .long, help: "Output JSON Lines file (.jsonl or .jsonl.gz), written atomically.")
    var output: String

    @Flag(help: "Stop at the first bad input record instead of counting and skipping it.")
    var strict = false

    @Option(help: "Process only a deterministic slice K/N of the records (0 <= K < N).")
    var shard: String?

    func parsedShard() throws -> Shard {
        guard let shard else { return .all }
        return try Shard(parsing: shard)
    }
}

/// Prints stage counts and bad-input lines to standard error.
enum DataReport {
    static func printStage(_ s: StageStats) {
        var line = "\(s.stage): \(s.documentsIn) docs in, \(s.documentsOut) out; \(s.bytesIn) bytes in, \(s.bytesOut) out"
        if !s.removed.isEmpty {
            line += "\n  removed: " + s.removed.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        if !s.counts.isEmpty {
            line += "\n  counts: " + s.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func printBad(_ bad: BadInputLog) {
        guard bad.count > 0 else { return }
        var text = "bad input records skipped: \(bad.count)\n"
        for e in bad.examples { text += "  \(e)\n" }
        FileHandle.standardError.write(Data(text.utf8))
    }
}

// MARK: - format

struct DataFormatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "format",
        abstract: "Turn JSONL, text, CSV and WARC files into {id, text, source, lang, url, meta} JSON Lines.",
        discussion: """
            The format of each input is guessed from its name (.jsonl/.json, .csv, .warc, else text) unless
            --format is given. WARC: HTTP 200 HTML responses, charset from the headers or <meta> (GBK/GB18030
            included), visible text as in Common Crawl's WET files. Documents are tagged zh/en/de/fr/code/other.
            Example: intern data format --input pages.warc.gz --output pages.jsonl.gz
            """
    )

    @OptionGroup var io: DataIOOptions

    @Option(help: "Input format: jsonl, text, csv or warc (default: from the file name).")
    var format: String?

    @Option(help: "Field (JSONL) or column (CSV) holding the text.")
    var textField = "text"

    @Option(help: "Field or column holding the id.")
    var idField = "id"

    @Option(help: "Field or column holding the URL.")
    var urlField = "url"

    @Option(help: "Value of `source` (default: the input file's name).")
    var source: String?

    @Flag(help: "Re-tag the language of documents that already have one.")
    var retag = false

    func run() async throws {
        var options = FormatOptions()
        options.textField = textField
        options.idField = idField
        options.urlField = urlField
        options.source = source
        options.retag = retag
        options.strict = io.strict
        let fmt: InputFormat?
        if let format {
            guard let f = InputFormat(rawValue: format) else { throw ValidationError("--format must be one of jsonl, text, csv, warc") }
            fmt = f
        } else {
            fmt = nil
        }
        let shard = try io.parsedShard()
        var formatter = DocumentFormatter(options: options)
        let writer = try DocumentWriter(path: io.output)
        var index = 0
        var docsIn = 0
        for path in io.input {
            try formatter.read(path: path, format: fmt) { (doc: Document) throws(DatasetError) in
                defer { index += 1 }
                docsIn += 1
                guard shard.contains(index) else { return }
                try writer.write(doc)
            }
        }
        try writer.finish()
        var stats = StageStats(stage: "format")
        stats.documentsIn = docsIn
        stats.documentsOut = writer.documents
        stats.bytesIn = formatter.bytesIn
        stats.bytesOut = writer.bytesWritten
        if formatter.recordsSkipped > 0 { stats.counts["warc:skipped_non_html_or_non_200"] = formatter.recordsSkipped }
        DataReport.printStage(stats)
        DataReport.printBad(formatter.bad)
    }
}

// MARK: - clean

struct DataCleanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Remove documents by Gopher, C4 and FineWeb heuristic rules (English and Chinese aware).",
        discussion: """
            Thresholds come from --config (a JSON object with snake_case keys, see docs/data.md); missing keys
            keep their defaults. Prints removals per rule.
            Example: intern data clean --input web.jsonl.gz --output clean.jsonl --removed removed.jsonl
            """
    )

    @OptionGroup var io: DataIOOptions

    @Option(help: "JSON file with rule thresholds.")
    var config: String?

    @Flag(help: "Normalise text first (NFC, whitespace, stray HTML entities).")
    var normalize = false

    @Option(help: "Also write removed documents here, with meta.removed_by.")
    var removed: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads = 0

    func run() async throws {
        var cfg = try CleanConfig.load(path: config)
        if normalize { cfg.normalize = true }
        let reader = DocumentReader(paths: io.input, strict: io.strict, shard: try io.parsedShard())
        let writer = try DocumentWriter(path: io.output)
        var runner = StageRunner(filters: [Cleaner(config: cfg)], threads: threads)
        if let removed { runner.removedWriter = try DocumentWriter(path: removed) }
        let stats = try runner.run(next: reader.next, write: writer.write)
        try writer.finish()
        try runner.removedWriter?.finish()
        stats.forEach(DataReport.printStage)
        DataReport.printBad(reader.bad)
    }
}

// MARK: - dedup

struct DataDedupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dedup",
        abstract: "Remove exact and near duplicates (MinHash-LSH), keeping one document per cluster.",
        discussion: """
            Bands and rows default to the pair that minimises false positives + false negatives for the
            threshold (as datasketch does). With --clusters, writes {"id": ..., "cluster": N} for every
            document in a cluster of two or more.
            Example: intern data dedup --input in.jsonl.gz --output out.jsonl --threshold 0.8 --clusters clusters.jsonl
            """
    )

    @OptionGroup var io: DataIOOptions

    @Option(help: "Jaccard similarity threshold.")
    var threshold = 0.8

    @Option(help: "Number of MinHash permutations.")
    var numPerm = 128

    @Option(help: "LSH bands (with --rows; default: derived from the threshold).")
    var bands: Int?

    @Option(help: "LSH rows per band (with --bands).")
    var rows: Int?

    @Option(help: "Shingle size in words (in characters for Chinese).")
    var ngram = 5

    @Option(help: "Write cluster membership here.")
    var clusters: String?

    @Flag(help: "Check LSH candidates by exact Jaccard similarity of their shingle sets.")
    var verify = false

    @Flag(help: "Skip the exact (normalised-text hash) step.")
    var noExact = false

    @Option(help: "Seed of the MinHash permutations.")
    var seed: UInt64 = 1

    @Option(help: "Worker threads (default: all cores).")
    var threads = 0

    func run() async throws {
        if io.shard != nil { throw ValidationError("dedup compares all documents with each other; run it without --shard") }
        guard (bands == nil) == (rows == nil) else { throw ValidationError("give --bands and --rows together") }
        var config = DedupConfig()
        config.threshold = threshold
        config.numPerm = numPerm
        config.bands = bands ?? 0
        config.rows = rows ?? 0
        config.ngram = ngram
        config.verify = verify
        config.exact = !noExact
        config.seed = seed
        config.threads = threads
        let dedup = try Deduplicator(config: config)
        var bad = BadInputLog()
        let start = Date()
        let report = try dedup.run(inputs: io.input, output: io.output, clustersPath: clusters, strict: io.strict, bad: &bad)
        let seconds = Date().timeIntervalSince(start)
        let mbps = Double(report.bytesIn) / 1e6 / max(seconds, 1e-9)
        let text = """
            dedup: \(report.documentsIn) docs in, \(report.documentsOut) out; \(report.bytesIn) bytes in, \(report.bytesOut) out
              \(report.lsh), exact duplicates \(report.exactDuplicates), near duplicates \(report.nearDuplicates), \
            clusters \(report.clusters), candidate pairs \(report.candidatePairs), rejected by verification \(report.rejectedByVerification)
              \(String(format: "%.2f", seconds)) s, \(String(format: "%.1f", mbps)) MB/s

            """
        FileHandle.standardError.write(Data(text.utf8))
        DataReport.printBad(bad)
    }
}
