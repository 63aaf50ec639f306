// `intern data`: the pretraining data pipeline (format → clean → dedup → safety → quality, and `run` for
// all of them from one config). Each subcommand reads `--input` and writes `--output` atomically; the work
// is in the InternData library.
import ArgumentParser
import Foundation
import InternData
import InternEval
import InternModels
import InternTokenizer

struct DataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Pretraining data pipeline: format, clean, dedup, safety, quality, run.",
        subcommands: [
            DataFormatCommand.self, DataCleanCommand.self, DataDedupCommand.self, DataSafetyCommand.self,
            DataQualityCommand.self, DataRunCommand.self,
        ]
    )
}

/// Options every stage shares.
struct DataIOOptions: ParsableArguments {
    @Option(name: .long, parsing: .upToNextOption, help: "Input files (.jsonl, .jsonl.gz, .jsonl.zst; format also takes .txt, .csv, .warc[.gz]).")
    var input: [String]

    @Option(name: .long, help: "Output JSON Lines file (.jsonl, .jsonl.gz or .jsonl.zst), written atomically.")
    var output: String

    @Flag(help: "Stop at the first bad input record instead of counting and skipping it.")
    var strict = false

    @Option(help: "Process only a deterministic slice K/N of the records (0 <= K < N).")
    var shard: String?

    func parsedShard() throws -> Shard {
        guard let shard else { return .all }
        return try Shard(parsing: shard)
    }

    /// Runs one filter stage from `input` to `output` (removed documents to `removed` when given) and
    /// prints its counts and the bad input records: the body of `clean`, `safety` and `quality`.
    func runFilter(_ filter: any DocumentFilter, threads: Int, removed: String?) throws {
        let shard = try parsedShard()
        let writer = try DocumentWriter(path: output)
        var runner = StageRunner(filters: [filter], threads: threads)
        if let removed { runner.removedWriter = try DocumentWriter(path: removed) }
        let stats: [StageStats]
        var bad = BadInputLog()
        if shard == .all {
            // Parsed and processed on worker threads of their own, in chunks of lines (the same output).
            stats = try runner.runJSONLines(paths: input, strict: strict, writer: writer, bad: &bad)
        } else {
            let reader = DocumentReader(paths: input, strict: strict, shard: shard)
            stats = try runner.run(next: reader.next, write: writer.write)
            bad = reader.bad
        }
        try writer.finish()
        try runner.removedWriter?.finish()
        stats.forEach(DataReport.printStage)
        DataReport.printBad(bad)
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
        try io.runFilter(Cleaner(config: cfg), threads: threads, removed: removed)
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

            Two phases for N machines (each given the same --input list): phase 1 per shard,
              intern data dedup --input IN... --shard K/N --keys-only --output keys-K.ikdk
            then one merge over all key files, which writes the kept documents of IN:
              intern data dedup --input IN... --merge keys-*.ikdk --output out.jsonl --clusters clusters.jsonl
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

    @Option(help: "Shingle hashing: datasketch (signatures equal datasketch's MinHash) or fast.")
    var hash = "datasketch"

    @Option(help: "Worker threads (default: all cores).")
    var threads = 0

    @Flag(help: "Phase 1 of a sharded dedup: write this shard's keys to --output instead of documents.")
    var keysOnly = false

    @Option(parsing: .upToNextOption, help: "Phase 2 of a sharded dedup: the key files of all shards.")
    var merge: [String] = []

    @Option(help: "Memory for LSH bucket entries before they spill to sorted runs on disk (bytes; K, M, G suffixes).")
    var memoryLimit: String?

    @Option(help: "Folder for spill files (default: the system's temporary folder).")
    var spillDirectory: String?

    func run() async throws {
        if io.shard != nil && !keysOnly {
            throw ValidationError("dedup compares all documents with each other; --shard needs --keys-only (phase 1 of a sharded dedup)")
        }
        if keysOnly && !merge.isEmpty { throw ValidationError("--keys-only and --merge are two different phases") }
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
        guard let scheme = MinHasher.Scheme(rawValue: hash) else { throw ValidationError("--hash must be datasketch or fast") }
        config.hashScheme = scheme
        if let memoryLimit {
            guard let bytes = Self.parseBytes(memoryLimit), bytes > 0 else {
                throw ValidationError("--memory-limit must be a positive size such as 512M, got '\(memoryLimit)'")
            }
            config.memoryLimit = bytes
        }
        config.spillDirectory = spillDirectory ?? ""
        let dedup = try Deduplicator(config: config)
        var bad = BadInputLog()
        let start = Date()
        if keysOnly {
            let n = try dedup.writeKeys(inputs: io.input, shard: try io.parsedShard(), path: io.output, strict: io.strict, bad: &bad)
            FileHandle.standardError.write(Data("dedup keys: \(n) documents of shard \(try io.parsedShard()) written to \(io.output)\n".utf8))
            DataReport.printBad(bad)
            return
        }
        let report =
            merge.isEmpty
            ? try dedup.run(inputs: io.input, output: io.output, clustersPath: clusters, strict: io.strict, bad: &bad)
            : try dedup.merge(keyFiles: merge, inputs: io.input, output: io.output, clustersPath: clusters, strict: io.strict)
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

extension DataDedupCommand {
    /// "4096", "64K", "512M", "2G" (powers of 1024) as bytes.
    static func parseBytes(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "k": 1 << 10, "M": 1 << 20, "m": 1 << 20, "G": 1 << 30, "g": 1 << 30]
        if let last = text.last, let unit = units[last] { return Int(text.dropLast()).map { $0 * unit } }
        return Int(text)
    }
}

// MARK: - safety

struct DataSafetyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "safety",
        abstract: "Remove blocked URLs and documents with bad words; mask e-mails, phones, Chinese ID numbers and IPs.",
        discussion: """
            Word lists default to the LDNOOBW English and Chinese lists in Assets/safety/ldnoobw.
            Example: intern data safety --input clean.jsonl --output safe.jsonl --block-domain example.com
            """
    )

    @OptionGroup var io: DataIOOptions

    @Option(help: "JSON file with safety settings.")
    var config: String?

    @Option(help: "Block this domain and its subdomains (repeatable).")
    var blockDomain: [String] = []

    @Option(help: "A word-list file (repeatable; replaces the default lists).")
    var wordList: [String] = []

    @Option(help: "Also write removed documents here.")
    var removed: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads = 0

    func run() async throws {
        var cfg = try SafetyConfig.load(path: config)
        cfg.blockedDomains += blockDomain
        if !wordList.isEmpty { cfg.wordListFiles = wordList }
        try io.runFilter(try SafetyFilter(config: cfg), threads: threads, removed: removed)
    }
}

// MARK: - quality

struct DataQualityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quality",
        abstract: "Score documents with a hashed n-gram classifier or a language model's perplexity; train a classifier.",
        subcommands: [DataQualityFilterCommand.self, DataQualityTrainCommand.self],
        defaultSubcommand: DataQualityFilterCommand.self
    )
}

struct DataQualityFilterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filter",
        abstract: "Keep documents scoring at least --threshold (meta.quality_score), or at most --max-perplexity (meta.perplexity).",
        discussion: """
            Examples: intern data quality --input safe.jsonl --output good.jsonl --threshold 0.5
              intern data quality --scorer perplexity --model SmolLM2-135M-Instruct.Q4_1.gguf --max-perplexity 200 \\
                --max-tokens 128 --input safe.jsonl --output good.jsonl
            """
    )

    @OptionGroup var io: DataIOOptions

    @Option(help: "classifier (hashed n-gram model) or perplexity (a language model through the engine, as CCNet).")
    var scorer = "classifier"

    @Option(help: "Classifier file (default: Assets/quality/web-quality.ikqm), or for perplexity a .gguf or checkpoint folder.")
    var model: String?

    @Option(help: "Classifier: minimum score to keep a document.")
    var threshold = 0.5

    @Option(help: "Perplexity: maximum perplexity to keep a document.")
    var maxPerplexity = 1000.0

    @Option(help: "Perplexity: score at most this many tokens of each document (its beginning).")
    var maxTokens = 256

    @Option(help: "Also write removed documents here.")
    var removed: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads = 0

    func run() async throws {
        var cfg = QualityConfig()
        cfg.scorer = scorer
        cfg.model = model ?? ""
        cfg.threshold = threshold
        cfg.maxPerplexity = maxPerplexity
        cfg.maxTokens = maxTokens
        let filter: any DocumentFilter
        switch scorer {
        case "classifier": filter = try QualityFilter(config: cfg)
        case "perplexity":
            guard model != nil else { throw ValidationError("--scorer perplexity needs --model FILE.gguf (or a checkpoint folder)") }
            filter = PerplexityFilter(maxPerplexity: maxPerplexity, perplexity: try Self.perplexityFunction(cfg))
        default: throw ValidationError("--scorer must be classifier or perplexity, got '\(scorer)'")
        }
        try io.runFilter(filter, threads: threads, removed: removed)
    }
}

extension DataQualityFilterCommand {
    /// The perplexity of a text under the config's model (`DocumentPerplexityScorer`).
    static func perplexityFunction(_ cfg: QualityConfig) throws -> @Sendable (String) throws -> Double? {
        guard FileManager.default.fileExists(atPath: cfg.model) else { throw ValidationError("\(cfg.model): no such file or directory") }
        let model = try ModelRegistry.load(path: cfg.model, threadCount: nil)
        let tokenizer = try loadTokenizer(at: cfg.model)
        // BOS only when the vocabulary adds one (as llama.cpp's add_special).
        let probe = "The"
        let addsBOS =
            tokenizer.encode(probe, addBOS: true, parseSpecialTokens: false).count
            == tokenizer.encode(probe, addBOS: false, parseSpecialTokens: false).count + 1
        let scorer = DocumentPerplexityScorer(model: model, maxTokens: cfg.maxTokens, bos: addsBOS ? tokenizer.bosTokenID : nil) { text in
            tokenizer.encode(text, addBOS: false, parseSpecialTokens: false)
        }
        return { text in try scorer.perplexity(text) }
    }
}

struct DataQualityTrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the quality model on positive and negative JSON Lines.",
        discussion: """
            Holds out every 10th document of each class and prints the held-out accuracy.
            Example: intern data quality train --positive good.jsonl --negative bad.jsonl --model model.ikqm
            """
    )

    @Option(parsing: .upToNextOption, help: "JSON Lines files of good documents.")
    var positive: [String]

    @Option(parsing: .upToNextOption, help: "JSON Lines files of bad documents.")
    var negative: [String]

    @Option(help: "Where to write the model.")
    var model: String

    @Option(help: "Field holding the text.")
    var textField = "text"

    @Option(help: "log2 of the number of feature buckets.")
    var bits = 18

    @Option(help: "Training epochs.")
    var epochs = 8

    func run() async throws {
        func load(_ paths: [String]) throws -> [String] {
            let r = DocumentReader(paths: paths, textField: textField)
            var texts: [String] = []
            while let d = try r.next() { texts.append(d.text) }
            DataReport.printBad(r.bad)
            return texts
        }
        let pos = try load(positive), neg = try load(negative)
        guard !pos.isEmpty, !neg.isEmpty else { throw ValidationError("need at least one positive and one negative document") }
        func split(_ t: [String]) -> (train: [String], held: [String]) {
            (t.enumerated().filter { $0.offset % 10 != 9 }.map(\.element), t.enumerated().filter { $0.offset % 10 == 9 }.map(\.element))
        }
        let (pt, ph) = split(pos), (nt, nh) = split(neg)
        let m = QualityModel.train(positives: pt, negatives: nt, bits: bits, epochs: epochs)
        let correct = ph.filter { m.score($0) >= 0.5 }.count + nh.filter { m.score($0) < 0.5 }.count
        let held = ph.count + nh.count
        // The shipped model is trained on everything once the held-out accuracy is known.
        let full = QualityModel.train(positives: pos, negatives: neg, bits: bits, epochs: epochs)
        try full.write(to: model)
        let text =
            "quality train: \(pos.count) positive, \(neg.count) negative; held-out accuracy \(correct)/\(held)"
            + (held > 0 ? String(format: " (%.1f%%)", 100 * Double(correct) / Double(held)) : "") + "; wrote \(model)\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}

// MARK: - run

struct DataRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run format → clean → dedup → safety → quality from one JSON or YAML config and write a report.",
        discussion: """
            The report (documents and bytes in and out per stage, removals per rule, sampled removed documents)
            goes to the config's "report" path or OUTPUT.report.json. Relative paths in the config are relative
            to the config file. Example: intern data run --config Assets/data/pipeline.json
            """
    )

    @Option(help: "Pipeline config (JSON, or YAML: .yaml/.yml).")
    var config: String

    @Option(name: .long, parsing: .upToNextOption, help: "Inputs (override the config's).")
    var input: [String] = []

    @Option(help: "Output (overrides the config's).")
    var output: String?

    @Flag(help: "Stop at the first bad input record.")
    var strict = false

    @Option(help: "Process only slice K/N of the documents (dedup then works within the slice).")
    var shard: String?

    @Option(help: "Keep intermediate files in this folder (for --resume).")
    var work: String?

    @Flag(help: "Reuse completed phases in --work.")
    var resume = false

    @Option(help: "Worker threads (default: all cores).")
    var threads = 0

    func run() async throws {
        var cfg = try PipelineConfig.load(path: config)
        if !input.isEmpty { cfg.inputs = input }
        if let output { cfg.output = output }
        var pipeline = Pipeline(config: cfg)
        pipeline.makePerplexityScorer = DataQualityFilterCommand.perplexityFunction
        pipeline.strict = strict
        pipeline.threads = threads
        pipeline.workDirectory = work
        pipeline.resume = resume
        if let shard { pipeline.shard = try Shard(parsing: shard) }
        if isatty(2) != 0 {
            pipeline.progress = { n in FileHandle.standardError.write(Data("\r\u{1B}[K\(n) documents read".utf8)) }
        }
        let report = try pipeline.run()
        if isatty(2) != 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        var text = report.markdown
        text += String(format: "%.2f s, %.1f MB/s of input\n", report.seconds, report.megabytesPerSecond)
        if report.badInputCount > 0 {
            text += "bad input records skipped: \(report.badInputCount)\n" + report.badInputExamples.map { "  \($0)\n" }.joined()
        }
        FileHandle.standardError.write(Data(text.utf8))
    }
}
