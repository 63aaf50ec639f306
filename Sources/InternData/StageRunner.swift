// Streaming document filters and the runner that applies a chain of them in one pass over JSON Lines, on
// all cores (batches of documents split across threads, results written in input order), with per-stage
// counts: documents and bytes in and out, removals per rule, and a reservoir sample of removed documents.
import Foundation

/// What a filter decided for one document.
public enum FilterResult: Sendable {
    /// Kept (possibly changed); `counts` adds to the stage's named counters (e.g. masked e-mails).
    case keep(Document, counts: [String: Int])
    case remove(rule: String)
}

/// A stage that looks at one document at a time.
public protocol DocumentFilter: Sendable {
    var stageName: String { get }
    func apply(_ document: Document) -> FilterResult
}

extension Cleaner: DocumentFilter {
    public var stageName: String { "clean" }
    public func apply(_ document: Document) -> FilterResult {
        switch clean(document) {
        case let .keep(doc, dropped, filtered):
            var counts: [String: Int] = [:]
            if dropped > 0 { counts["lines:boilerplate"] = dropped }
            if filtered > 0 { counts["lines:c4_not_sentence"] = filtered }
            return .keep(doc, counts: counts)
        case let .remove(rule): return .remove(rule: rule)
        }
    }
}

/// The normalisation step as a filter (never removes).
public struct NormalizeFilter: DocumentFilter {
    public init() {}
    public var stageName: String { "normalize" }
    public func apply(_ document: Document) -> FilterResult {
        var d = document
        d.text = TextNormalizer.normalize(d.text)
        return d.text.isEmpty ? .remove(rule: "empty") : .keep(d, counts: [:])
    }
}

/// A removed document kept for the report.
public struct RemovedSample: Sendable, Codable, Equatable {
    public var id: String
    public var lang: String
    public var rule: String
    public var excerpt: String
}

/// Counts of one stage.
public struct StageStats: Sendable, Codable, Equatable {
    public var stage: String
    public var documentsIn = 0
    public var documentsOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    public var removed: [String: Int] = [:]
    public var counts: [String: Int] = [:]
    public var samples: [RemovedSample] = []
    public var seconds = 0.0

    public init(stage: String) { self.stage = stage }
}

/// Applies filters in order to documents from a reader, writing the survivors.
public struct StageRunner {
    public var filters: [any DocumentFilter]
    public var threads: Int
    public var samplesPerStage = 8
    public var seed: UInt64 = 7
    /// Removed documents (with `meta.removed_by`) go here when set.
    public var removedWriter: DocumentWriter?
    /// Tag documents without a `lang` in the workers, before the first filter (the pipeline's format step
    /// leaves tagging to them, so that it does not run on the reading thread).
    public var tagLanguage = false
    /// When set, the workers also compute the dedup keys of every document that survives the chain, so the
    /// pipeline's dedup needs no pass over the data of its own; they collect in `collectedKeys`, in output order.
    var dedup: Deduplicator?
    var collectedKeys = Deduplicator.CollectedKeys()

    // Streaming state.
    var stats: [StageStats] = []
    var rng = SplitMix64(seed: 7)
    var removedSeen: [Int] = []
    var pending: [Document] = []
    var inFlight: BatchJob?
    var started = false
    let batchSize = 512

    public init(filters: [any DocumentFilter], threads: Int = 0) {
        self.filters = filters
        self.threads = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
        stats = filters.map { StageStats(stage: $0.stageName) }
        removedSeen = [Int](repeating: 0, count: filters.count)
    }

    /// One document's path through the chain.
    struct Outcome {
        var stagesPassed: [(bytesIn: Int, counts: [String: Int])] = []
        var final: Document?
        var removedAt: Int = -1
        var rule = ""
        var removedDoc: Document?
        var keys: DocumentKeys?
        /// The id and UTF-8 text length of `final`, which the chunked path drops once it is serialized.
        var finalID = ""
        var finalTextBytes = -1
    }

    /// Reusable buffers of one worker.
    struct Scratch {
        var tokens: [UInt64] = []
        var shingles: [UInt64] = []
        var hashes32: [UInt32] = []
        var signature: [UInt32] = []
    }

    func process(_ doc: Document, scratch: inout Scratch) -> Outcome {
        var o = process(doc)
        if let dedup, let d = o.final {
            o.keys = dedup.keys(
                for: d.text, tokens: &scratch.tokens, shingles: &scratch.shingles, hashes32: &scratch.hashes32,
                signature: &scratch.signature)
        }
        return o
    }

    func process(_ doc: Document) -> Outcome {
        var o = Outcome()
        var current = doc
        if tagLanguage && current.lang.isEmpty { current.lang = LanguageTagger.tag(current.text) }
        for (k, f) in filters.enumerated() {
            let bytes = current.text.utf8.count
            switch f.apply(current) {
            case let .keep(d, counts):
                o.stagesPassed.append((bytes, counts))
                current = d
            case let .remove(rule):
                o.stagesPassed.append((bytes, [:]))
                o.removedAt = k
                o.rule = rule
                o.removedDoc = current
                return o
            }
        }
        o.final = current
        o.finalID = current.id
        o.finalTextBytes = current.text.utf8.count
        return o
    }

    /// Runs the chain over `next()` until it returns nil; returns one `StageStats` per filter.
    public mutating func run(next: () throws(DatasetError) -> Document?, write: (Document) throws(DatasetError) -> Void)
        throws(DatasetError) -> [StageStats]
    {
        while let d = try next() { try add(d, write: write) }
        return try finish(write: write)
    }

    /// Queues one document; a full batch goes to the workers while the caller reads on, and the batch before
    /// it is written (in input order) first.
    public mutating func add(_ document: Document, write: (Document) throws(DatasetError) -> Void) throws(DatasetError) {
        pending.append(document)
        if pending.count >= batchSize { try flush(write: write) }
    }

    /// Processes and writes what is queued; returns one `StageStats` per filter.
    public mutating func finish(write: (Document) throws(DatasetError) -> Void) throws(DatasetError) -> [StageStats] {
        if !pending.isEmpty { try flush(write: write) }
        if let job = inFlight {
            inFlight = nil
            try collect(job, write: write)
        }
        return stats
    }

    mutating func flush(write: (Document) throws(DatasetError) -> Void) throws(DatasetError) {
        if !started {
            rng = SplitMix64(seed: seed)
            started = true
        }
        let job = BatchJob(batch: pending)
        pending = []
        if threads == 1 {
            // One thread means one: no reading ahead in parallel.
            job.outcomes = processBatch(job.batch)
            try collect(job, write: write)
            return
        }
        // The workers get a copy holding only the chain: a copy of `self` would share the growing arrays and
        // make every append copy them.
        var chain = StageRunner(filters: filters, threads: threads)
        chain.tagLanguage = tagLanguage
        chain.dedup = dedup
        let me = UncheckedSendable(chain)
        let box = UncheckedSendable(job)
        DispatchQueue.global().async(group: job.group) { box.value.outcomes = me.value.processBatch(box.value.batch) }
        if let previous = inFlight { try collect(previous, write: write) }
        inFlight = job
    }

    /// A batch being processed in the background.
    final class BatchJob {
        let batch: [Document]
        var outcomes: [Outcome] = []
        let group = DispatchGroup()
        init(batch: [Document]) { self.batch = batch }
    }

    /// Waits for `job` and records its outcomes in input order.
    mutating func collect(_ job: BatchJob, write: (Document) throws(DatasetError) -> Void) throws(DatasetError) {
        job.group.wait()
        for o in job.outcomes {
            try record(o)
            if let f = o.final { try write(f) }
        }
    }

    /// Adds one outcome to the counts, the samples and the removed documents' file, in input order; the
    /// kept document's dedup keys go to `collectedKeys`.
    mutating func record(_ o: Outcome) throws(DatasetError) {
        for (k, s) in o.stagesPassed.enumerated() {
            stats[k].documentsIn += 1
            stats[k].bytesIn += s.bytesIn
            for (key, v) in s.counts { stats[k].counts[key, default: 0] += v }
            if k == o.removedAt {
                stats[k].removed[o.rule, default: 0] += 1
                removedSeen[k] += 1
                // Reservoir sample of removed documents.
                let doc = o.removedDoc!
                // The excerpt only for documents that are sampled: it counts characters.
                func sample() -> RemovedSample { RemovedSample(id: doc.id, lang: doc.lang, rule: o.rule, excerpt: Self.excerpt(doc.text)) }
                if stats[k].samples.count < samplesPerStage {
                    stats[k].samples.append(sample())
                } else {
                    let j = Int(rng.next() % UInt64(removedSeen[k]))
                    if j < samplesPerStage { stats[k].samples[j] = sample() }
                }
                if let w = removedWriter {
                    var r = doc
                    r.setMeta("removed_by", raw: JSONWriter.quoted(filters[k].stageName + ":" + o.rule))
                    try w.write(r)
                }
            } else {
                stats[k].documentsOut += 1
                let outBytes = k + 1 < o.stagesPassed.count ? o.stagesPassed[k + 1].bytesIn : max(0, o.finalTextBytes)
                stats[k].bytesOut += outBytes
            }
        }
        if o.finalTextBytes >= 0, let keys = o.keys {
            try collectedKeys.append(keys, id: o.finalID, line: collectedKeys.ids.count + 1, textBytes: o.finalTextBytes)
        }
    }

    func processBatch(_ batch: [Document]) -> [Outcome] {
        // Documents differ in size by orders of magnitude, so the batch is cut into more chunks than threads
        // and the threads take chunks as they finish.
        let chunks = threads == 1 ? 1 : max(1, min(threads * 8, batch.count / 8))
        if chunks == 1 {
            var scratch = Scratch()
            return batch.map { process($0, scratch: &scratch) }
        }
        let results = UnsafeMutableBufferPointer<Outcome>.allocate(capacity: batch.count)
        defer { results.deallocate() }
        let box = UncheckedSendable(results)
        let me = UncheckedSendable(self)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            var scratch = Scratch()
            let lo = batch.count * c / chunks, hi = batch.count * (c + 1) / chunks
            for k in lo..<hi { (box.value.baseAddress! + k).initialize(to: me.value.process(batch[k], scratch: &scratch)) }
        }
        let array = Array(results)
        _ = results.baseAddress!.deinitialize(count: batch.count)
        return array
    }

    static func excerpt(_ text: String) -> String {
        let head = text.prefix(240)
        let flat = head.replacingOccurrences(of: "\n", with: " / ")
        // More than 240 characters, without counting them all.
        return head.endIndex < text.endIndex ? flat + "…" : flat
    }
}
