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

    public init(filters: [any DocumentFilter], threads: Int = 0) {
        self.filters = filters
        self.threads = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
    }

    /// One document's path through the chain.
    struct Outcome {
        var stagesPassed: [(bytesIn: Int, counts: [String: Int])] = []
        var final: Document?
        var removedAt: Int = -1
        var rule = ""
        var removedDoc: Document?
    }

    func process(_ doc: Document) -> Outcome {
        var o = Outcome()
        var current = doc
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
        return o
    }

    /// Runs the chain over `next()` until it returns nil; returns one `StageStats` per filter.
    public mutating func run(next: () throws(DatasetError) -> Document?, write: (Document) throws(DatasetError) -> Void)
        throws(DatasetError) -> [StageStats]
    {
        var stats = filters.map { StageStats(stage: $0.stageName) }
        var rng = SplitMix64(seed: seed)
        var removedSeen = [Int](repeating: 0, count: filters.count)
        var batch: [Document] = []
        let batchSize = 1024
        var done = false
        while !done {
            batch.removeAll(keepingCapacity: true)
            while batch.count < batchSize {
                guard let d = try next() else { done = true; break }
                batch.append(d)
            }
            if batch.isEmpty { break }
            let outcomes = processBatch(batch)
            for o in outcomes {
                for (k, s) in o.stagesPassed.enumerated() {
                    stats[k].documentsIn += 1
                    stats[k].bytesIn += s.bytesIn
                    for (key, v) in s.counts { stats[k].counts[key, default: 0] += v }
                    if k == o.removedAt {
                        stats[k].removed[o.rule, default: 0] += 1
                        removedSeen[k] += 1
                        // Reservoir sample of removed documents.
                        let doc = o.removedDoc!
                        let sample = RemovedSample(id: doc.id, lang: doc.lang, rule: o.rule, excerpt: Self.excerpt(doc.text))
                        if stats[k].samples.count < samplesPerStage {
                            stats[k].samples.append(sample)
                        } else {
                            let j = Int(rng.next() % UInt64(removedSeen[k]))
                            if j < samplesPerStage { stats[k].samples[j] = sample }
                        }
                        if let w = removedWriter {
                            var r = doc
                            r.setMeta("removed_by", raw: JSONWriter.quoted(filters[k].stageName + ":" + o.rule))
                            try w.write(r)
                        }
                    } else {
                        stats[k].documentsOut += 1
                        let outBytes = k + 1 < o.stagesPassed.count ? o.stagesPassed[k + 1].bytesIn : (o.final?.text.utf8.count ?? 0)
                        stats[k].bytesOut += outBytes
                    }
                }
                if let f = o.final { try write(f) }
            }
        }
        return stats
    }

    func processBatch(_ batch: [Document]) -> [Outcome] {
        let chunks = max(1, min(threads, batch.count / 16))
        if chunks == 1 { return batch.map(process) }
        let results = UnsafeMutableBufferPointer<Outcome>.allocate(capacity: batch.count)
        defer { results.deallocate() }
        let box = UncheckedSendable(results)
        let me = UncheckedSendable(self)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = batch.count * c / chunks, hi = batch.count * (c + 1) / chunks
            for k in lo..<hi { (box.value.baseAddress! + k).initialize(to: me.value.process(batch[k])) }
        }
        let array = Array(results)
        _ = results.baseAddress!.deinitialize(count: batch.count)
        return array
    }

    static func excerpt(_ text: String) -> String {
        let flat = text.prefix(240).replacingOccurrences(of: "\n", with: " / ")
        return text.count > 240 ? flat + "…" : flat
    }
}
