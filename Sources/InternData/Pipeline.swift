// `intern data run`: format → clean → dedup → safety → quality from one JSON or YAML config. Phase 1 reads
// the inputs once: JSON Lines go to the workers in chunks of whole lines (ChunkRunner.swift), which parse them,
// tag languages, run the streaming stages before the dedup barrier, compute each survivor's dedup keys (MinHash
// band keys) and serialize the survivors, written in input order (other formats are split into documents on
// the reading thread). Dedup then clusters those keys (no second parse); phase 2 reads back only the kept
// lines of phase 1's output, in chunks again, and runs the streaming stages after dedup. Intermediate files
// live in a work folder with a marker per phase, so an interrupted run can resume; the output is renamed into
// place atomically.
import Foundation

/// A pipeline configuration file (JSON, or YAML with the same keys).
public struct PipelineConfig: Codable, Sendable, Equatable {
    /// Input files of any format the format stage reads; `--input` overrides.
    public var inputs: [String] = []
    public var output = ""
    /// Stage names in order; `format` must come first, `dedup` at most once.
    public var stages = ["format", "clean", "dedup", "safety", "quality"]
    public var textField = "text"
    public var clean = CleanConfig()
    public var dedup = DedupConfig()
    public var safety = SafetyConfig()
    public var quality = QualityConfig()
    /// Where to write the JSON report (default: output + ".report.json").
    public var report = ""
    /// Removed documents sampled per stage into the report.
    public var samplesPerStage = 6

    public init() {}

    public static func load(path: String) throws(DatasetError) -> PipelineConfig {
        let object = try ConfigLoader.readObject(path: path)
        var config = PipelineConfig()
        for (key, value) in object {
            switch key {
            case "inputs": config.inputs = (value as? [String]) ?? []
            case "output": config.output = (value as? String) ?? ""
            case "stages":
                guard let s = value as? [String] else { throw .config(file: path, key: key, message: "expected a list of stage names") }
                config.stages = s
            case "text_field": config.textField = (value as? String) ?? "text"
            case "report": config.report = (value as? String) ?? ""
            case "samples_per_stage": config.samplesPerStage = (value as? Int) ?? 6
            case "clean", "dedup", "safety", "quality":
                guard let o = value as? [String: Any] else { throw .config(file: path, key: key, message: "expected an object") }
                switch key {
                case "clean": config.clean = try ConfigLoader.decode(CleanConfig.self, defaults: CleanConfig(), object: o, file: path, path: "clean.")
                case "dedup": config.dedup = try ConfigLoader.decode(DedupConfig.self, defaults: DedupConfig(), object: o, file: path, path: "dedup.")
                case "safety": config.safety = try ConfigLoader.decode(SafetyConfig.self, defaults: SafetyConfig(), object: o, file: path, path: "safety.")
                default: config.quality = try ConfigLoader.decode(QualityConfig.self, defaults: QualityConfig(), object: o, file: path, path: "quality.")
                }
            default:
                throw .config(
                    file: path, key: key,
                    message: "unknown key (known: inputs, output, stages, text_field, report, samples_per_stage, clean, dedup, safety, quality)")
            }
        }
        let known: Set<String> = ["format", "normalize", "clean", "dedup", "safety", "quality"]
        for s in config.stages where !known.contains(s) { throw .config(file: path, key: "stages", message: "unknown stage '\(s)'") }
        if config.stages.first != "format" { throw .config(file: path, key: "stages", message: "the first stage must be 'format'") }
        if config.stages.filter({ $0 == "dedup" }).count > 1 { throw .config(file: path, key: "stages", message: "dedup may appear once") }
        // Relative paths in the config are relative to the config file.
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let base = URL(fileURLWithPath: absolute).deletingLastPathComponent()
        func resolve(_ p: String) -> String { p.isEmpty || p.hasPrefix("/") ? p : base.appendingPathComponent(p).standardizedFileURL.path }
        config.inputs = config.inputs.map(resolve)
        config.output = resolve(config.output)
        config.report = resolve(config.report)
        config.safety.wordListFiles = config.safety.wordListFiles.map(resolve)
        config.safety.domainBlocklistFiles = config.safety.domainBlocklistFiles.map(resolve)
        config.quality.model = resolve(config.quality.model)
        return config
    }
}

/// The report of one pipeline run.
public struct PipelineReport: Codable, Sendable {
    public var stages: [StageStats] = []
    public var badInputCount = 0
    public var badInputExamples: [String] = []
    public var seconds = 0.0
    public var inputBytes = 0
    public var megabytesPerSecond = 0.0
    public var shard = "0/1"
    /// The size of phase 1's output, in the work folder's phase marker only: that file is not synced to disk,
    /// so --resume checks it is whole.
    public var intermediateBytes: Int?
}

public struct Pipeline {
    public var config: PipelineConfig
    public var strict = false
    public var shard = Shard.all
    public var threads = 0
    /// Bytes of JSON Lines a worker takes at a time (whole lines; a longer line comes whole).
    public var chunkSize = 1 << 18
    /// JSON Lines inputs are parsed by the workers, in chunks (off: the reading thread parses, for tests).
    var readsInChunks = true
    /// Keeps intermediate files here (default: a folder next to the output, removed at the end).
    public var workDirectory: String?
    /// Skip phases whose output is already complete in the work folder.
    public var resume = false
    /// Called with the number of documents read so far (for a progress line).
    public var progress: ((Int) -> Void)?
    /// Makes the perplexity function of a `scorer: perplexity` quality stage (the engine is outside this
    /// library; `intern data run` sets it).
    public var makePerplexityScorer: ((QualityConfig) throws -> @Sendable (String) throws -> Double?)?

    public init(config: PipelineConfig) {
        self.config = config
    }

    func filter(named name: String) throws(DatasetError) -> any DocumentFilter {
        switch name {
        case "normalize": return NormalizeFilter()
        case "clean": return Cleaner(config: config.clean)
        case "safety": return try SafetyFilter(config: config.safety)
        case "quality":
            switch config.quality.scorer {
            case "classifier": return try QualityFilter(config: config.quality)
            case "perplexity":
                guard let make = makePerplexityScorer else { throw .usage("the perplexity scorer needs the engine (run it through `intern data`)") }
                do {
                    return PerplexityFilter(maxPerplexity: config.quality.maxPerplexity, perplexity: try make(config.quality))
                } catch let e as DatasetError {
                    throw e
                } catch {
                    throw .io(file: config.quality.model, message: "cannot load the language model: \(error)")
                }
            default: throw .usage("quality.scorer must be 'classifier' or 'perplexity', got '\(config.quality.scorer)'")
            }
        default: throw .usage("'\(name)' is not a streaming stage")
        }
    }

    /// Runs every stage; returns the report (also written to `config.report`).
    public func run() throws(DatasetError) -> PipelineReport {
        guard !config.inputs.isEmpty else { throw .usage("no inputs: give --input or 'inputs' in the config") }
        guard !config.output.isEmpty else { throw .usage("no output: give --output or 'output' in the config") }
        let start = Date()
        let work = workDirectory ?? (config.output + ".work")
        do { try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true) } catch {
            throw .io(file: work, message: "cannot create the work folder")
        }
        let stageNames = Array(config.stages.dropFirst())
        let dedupIndex = stageNames.firstIndex(of: "dedup")
        let before = Array(stageNames[..<(dedupIndex ?? stageNames.count)])
        let after = dedupIndex.map { Array(stageNames[($0 + 1)...]) } ?? []
        var report = PipelineReport()
        report.shard = shard.description
        var bad = BadInputLog()
        var dedupConfig = config.dedup
        dedupConfig.threads = threads
        // One deduplicator for both phases (choosing bands x rows integrates the S-curve: milliseconds, serial).
        let deduplicator: Deduplicator? = dedupIndex == nil ? nil : try Deduplicator(config: dedupConfig)
        // Dedup keys computed by phase 1's workers (nil when phase 1 was resumed from the work folder).
        var phase1Keys: Deduplicator.CollectedKeys?

        // Phase 1: format + streaming stages before dedup.
        let phase1 = dedupIndex == nil ? config.output : work + "/phase1.jsonl"
        let phase1Report = work + "/phase1.report.json"
        if resume, dedupIndex != nil, let saved = try? JSONDecoder().decode(PipelineReport.self, from: Data(contentsOf: URL(fileURLWithPath: phase1Report))),
            let size = (try? FileManager.default.attributesOfItem(atPath: phase1))?[.size] as? Int, size == saved.intermediateBytes
        {
            report = saved
            report.intermediateBytes = nil
        } else {
            var formatter = DocumentFormatter(
                options: {
                    var o = FormatOptions()
                    o.textField = config.textField
                    o.strict = strict
                    o.tagLanguage = false  // The runner's workers tag.
                    return o
                }())
            var formatStats = StageStats(stage: "format")
            let filters = try before.map { (name: String) throws(DatasetError) -> any DocumentFilter in try filter(named: name) }
            var runner = StageRunner(filters: filters, threads: threads)
            runner.samplesPerStage = config.samplesPerStage
            runner.tagLanguage = true
            if let dedup = deduplicator {
                runner.dedup = dedup
                runner.collectedKeys.buckets = dedup.makeBuckets(directory: dedupConfig.spillDirectory.isEmpty ? work : nil)
            }
            // The intermediate file is not synced (its fsync stalled both cores): the phase marker records its
            // size instead.
            let writer = try DocumentWriter(path: phase1, durable: dedupIndex == nil)
            if readsInChunks && shard == .all && config.inputs.allSatisfy({ InputFormat.guess(path: $0) == .jsonl }) {
                // JSON Lines: the workers parse too (see ChunkRunner.swift).
                var parsing = LineParsing()
                parsing.textField = config.textField
                var totals = StageRunner.ChunkTotals()
                let stats = try runner.runChunks(
                    paths: config.inputs, parsing: parsing, writer: writer, strict: strict, chunkSize: chunkSize,
                    totals: &totals, progress: progress)
                try writer.finish()
                if dedupIndex != nil { phase1Keys = runner.collectedKeys }
                bad.merge(totals.bad)
                formatStats.documentsIn = totals.documents
                formatStats.documentsOut = totals.documents
                formatStats.bytesIn = totals.bytesIn
                formatStats.bytesOut = totals.textBytes
                report.stages = [formatStats] + stats
                report.inputBytes = totals.bytesIn
            } else {
                // The formatter pushes documents into the runner, which hands batches to the workers as they fill.
                var inputIndex = 0
                var bytesOut = 0
                for path in config.inputs {
                    try formatter.read(path: path) { (d: Document) throws(DatasetError) in
                        defer { inputIndex += 1 }
                        formatStats.documentsIn += 1
                        guard self.shard.contains(inputIndex) else { return }
                        formatStats.documentsOut += 1
                        bytesOut += d.text.utf8.count
                        if formatStats.documentsOut % 1000 == 0 { progress?(formatStats.documentsOut) }
                        try runner.add(d, write: writer.write)
                    }
                }
                let stats = try runner.finish(write: writer.write)
                try writer.finish()
                if dedupIndex != nil { phase1Keys = runner.collectedKeys }
                bad.merge(formatter.bad)
                formatStats.bytesIn = formatter.bytesIn
                formatStats.bytesOut = bytesOut
                if formatter.recordsSkipped > 0 { formatStats.counts["warc:skipped_non_html_or_non_200"] = formatter.recordsSkipped }
                report.stages = [formatStats] + stats
                report.inputBytes = formatter.bytesIn
            }
            report.badInputCount = bad.count
            report.badInputExamples = bad.examples
            // Written after phase 1's output is complete: its presence marks the phase as done for --resume.
            var marker = report
            marker.intermediateBytes = writer.bytesWritten
            if dedupIndex != nil, let data = try? JSONEncoder().encode(marker) {
                let w = try AtomicWriter(path: phase1Report)
                try w.write(Array(data))
                try w.finish()
            }
        }

        // Phase 2: dedup, then the streaming stages after it.
        if let dedup = deduplicator {
            let dedupStart = Date()
            var collected: Deduplicator.CollectedKeys
            if let phase1Keys {
                collected = phase1Keys
            } else {
                var dedupBad = BadInputLog()
                collected = try dedup.collectKeys(inputs: [phase1], shard: .all, strict: strict, bad: &dedupBad)
            }
            var (r, keptLines) = try dedup.cluster(collected, clustersPath: work + "/clusters.jsonl")
            collected = Deduplicator.CollectedKeys()
            // Without later stages the kept lines are the output; with them, phase 2 reads only those lines.
            if after.isEmpty { try dedup.copyLines(keptLines, inputs: [phase1], output: config.output, strict: strict, report: &r) }
            var s = StageStats(stage: "dedup")
            s.documentsIn = r.documentsIn
            s.documentsOut = r.documentsOut
            s.bytesIn = r.textBytesIn
            s.bytesOut = r.textBytesOut
            if r.exactDuplicates > 0 { s.removed["exact_duplicate"] = r.exactDuplicates }
            if r.nearDuplicates > 0 { s.removed["near_duplicate"] = r.nearDuplicates }
            s.counts["clusters"] = r.clusters
            s.counts["bands"] = r.lsh.bands
            s.counts["rows"] = r.lsh.rows
            s.seconds = Date().timeIntervalSince(dedupStart)
            report.stages.append(s)
            if !after.isEmpty {
                let filters = try after.map { (name: String) throws(DatasetError) -> any DocumentFilter in try filter(named: name) }
                var runner = StageRunner(filters: filters, threads: threads)
                runner.samplesPerStage = config.samplesPerStage
                var parsing = LineParsing()
                parsing.formatStage = false
                var kept = [Bool](repeating: false, count: (keptLines.last ?? 0) + 1)
                for line in keptLines { kept[line] = true }
                parsing.keptLines = kept
                var totals = StageRunner.ChunkTotals()
                let writer = try DocumentWriter(path: config.output)
                let stats = try runner.runChunks(
                    paths: [phase1], parsing: parsing, writer: writer, strict: strict, chunkSize: chunkSize, totals: &totals)
                try writer.finish()
                report.stages += stats
            }
            if workDirectory == nil { try? FileManager.default.removeItem(atPath: work) }
        } else if workDirectory == nil {
            try? FileManager.default.removeItem(atPath: work)
        }
        report.seconds = Date().timeIntervalSince(start)
        report.megabytesPerSecond = Double(report.inputBytes) / 1e6 / max(report.seconds, 1e-9)
        let reportPath = config.report.isEmpty ? config.output + ".report.json" : config.report
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        if let data = try? encoder.encode(report) {
            let w = try AtomicWriter(path: reportPath)
            try w.write(Array(data) + [0x0A])
            try w.finish()
        }
        return report
    }

}

extension PipelineReport {
    /// A short Markdown table of the stages.
    public var markdown: String {
        var out = "| stage | docs in | docs out | MB in | MB out | removed (by rule) |\n|---|---:|---:|---:|---:|---|\n"
        for s in stages {
            let removed = s.removed.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            out +=
                "| \(s.stage) | \(s.documentsIn) | \(s.documentsOut) | \(String(format: "%.2f", Double(s.bytesIn) / 1e6)) | \(String(format: "%.2f", Double(s.bytesOut) / 1e6)) | \(removed) |\n"
        }
        return out
    }
}
