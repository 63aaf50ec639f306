// The dedup stage (`intern data dedup`): exact duplicates by a hash of the normalised text, then
// MinHash-LSH near-duplicates, joined into clusters with union-find; the first document of each cluster is
// kept. Two passes over the input: the first keeps only per-document band keys (bands × 8 bytes), ids and,
// with `verify`, shingle sets; the second streams the input again and writes the kept documents, so the
// texts are never all in memory. Signatures are computed on all cores, in batches. With a memory limit the
// band keys go to `BandBuckets`, which spills sorted runs to disk and merges them when clustering.
import Foundation

/// Parameters of the dedup stage.
public struct DedupConfig: Codable, Sendable, Equatable {
    /// Jaccard similarity at or above which two documents are duplicates.
    public var threshold = 0.8
    public var numPerm = 128
    /// Bands and rows; 0 derives both from the threshold (datasketch's `_optimal_param`).
    public var bands = 0
    public var rows = 0
    /// Shingle size in tokens (words; single Han characters for Chinese).
    public var ngram = 5
    /// Check LSH candidates by the exact Jaccard similarity of their shingle sets.
    public var verify = false
    public var exact = true
    public var seed: UInt64 = 1
    /// Worker threads for signatures; 0 means all cores.
    public var threads = 0
    /// Shingle hashing and permutations: "datasketch" (signatures equal datasketch's) or "fast".
    public var hashScheme = MinHasher.Scheme.datasketch
    /// Bytes of LSH bucket entries held in memory before they are spilled to sorted runs on disk; 0: no limit.
    public var memoryLimit = 0
    /// Where spill files go; empty: the system's temporary folder.
    public var spillDirectory = ""

    public init() {}

    public var lsh: LSHParameters {
        if bands > 0 && rows > 0 { return LSHParameters(bands: bands, rows: rows) }
        return LSHParameters.optimal(threshold: threshold, numPerm: numPerm)
    }
}

/// Counts of one dedup run.
public struct DedupReport: Sendable, Equatable {
    public var documentsIn = 0
    public var documentsOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    /// UTF-8 bytes of the documents' texts read and kept (the pipeline report counts text, not JSON).
    public var textBytesIn = 0
    public var textBytesOut = 0
    public var exactDuplicates = 0
    public var nearDuplicates = 0
    public var clusters = 0
    public var candidatePairs = 0
    public var rejectedByVerification = 0
    public var lsh = LSHParameters(bands: 0, rows: 0)
}

/// The per-document facts the LSH step needs.
struct DocumentKeys {
    var exact: (UInt64, UInt64)
    /// (bands) band keys; empty when the text has no tokens.
    var bandKeys: [UInt64]
    var shingles: [UInt64]?
}

public struct Deduplicator: Sendable {
    public let config: DedupConfig
    public let lsh: LSHParameters
    let hasher: MinHasher

    public init(config: DedupConfig) throws(DatasetError) {
        guard config.threshold > 0 && config.threshold <= 1 else { throw .usage("--threshold must be in (0, 1]") }
        guard config.numPerm > 0 && config.ngram > 0 else { throw .usage("--num-perm and --ngram must be positive") }
        self.config = config
        lsh = config.lsh
        guard lsh.bands * lsh.rows <= config.numPerm else {
            throw .usage("bands x rows (\(lsh.bands) x \(lsh.rows)) exceeds --num-perm \(config.numPerm)")
        }
        hasher = MinHasher(numPerm: config.numPerm, ngram: config.ngram, seed: config.seed, scheme: config.hashScheme)
    }

    /// A 128-bit hash of the normalised text for exact dedup. The normal form is the token sequence of the
    /// shingles (lower-cased words and single CJK characters; punctuation, case and spacing ignored), so the
    /// hash comes from token hashes already computed; a text without tokens hashes its raw bytes.
    static func exactHash(tokens: [UInt64], text: String) -> (UInt64, UInt64) {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        var h2: UInt64 = UInt64(tokens.count)
        if tokens.isEmpty {
            for c in text.utf8 { h1 = (h1 ^ UInt64(c)) &* 0x100_0000_01b3 }
            return (h1, h2)
        }
        for (k, t) in tokens.enumerated() {
            h1 = MinHasher.mix(h1 ^ t)
            h2 = h2 &+ MinHasher.mix(t &+ UInt64(k) &* 0x9E37_79B9_7F4A_7C15)
        }
        return (h1, h2)
    }

    func keys(
        for text: String, tokens: inout [UInt64], shingles: inout [UInt64], hashes32: inout [UInt32],
        signature: inout [UInt32]
    ) -> DocumentKeys {
        let exact: (UInt64, UInt64)
        switch hasher.scheme {
        case .fast:
            MinHasher.tokenHashes(text, into: &tokens)
            exact = Self.exactHash(tokens: tokens, text: text)
            hasher.shingles(tokens: tokens, into: &shingles)
            guard !shingles.isEmpty else { return DocumentKeys(exact: exact, bandKeys: [], shingles: config.verify ? [] : nil) }
            hasher.signature(shingles: shingles, into: &signature)
        case .datasketch:
            hasher.datasketchHashes(text, tokens: &tokens, into: &hashes32)
            exact = Self.exactHash(tokens: tokens, text: text)
            guard !hashes32.isEmpty else { return DocumentKeys(exact: exact, bandKeys: [], shingles: config.verify ? [] : nil) }
            hasher.signature32(hashes: hashes32, into: &signature)
            if config.verify {
                shingles.removeAll(keepingCapacity: true)
                for h in hashes32 { shingles.append(UInt64(h)) }
            }
        }
        var bandKeys = [UInt64](repeating: 0, count: lsh.bands)
        for band in 0..<lsh.bands {
            var h: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(band + 1)
            for r in 0..<lsh.rows { h = MinHasher.mix(h ^ UInt64(signature[band * lsh.rows + r])) }
            bandKeys[band] = h
        }
        var set: [UInt64]? = nil
        if config.verify {
            shingles.sort()
            var unique: [UInt64] = []
            unique.reserveCapacity(shingles.count)
            for x in shingles where unique.last != x { unique.append(x) }
            set = unique
        }
        return DocumentKeys(exact: exact, bandKeys: bandKeys, shingles: set)
    }

    /// Band keys of a batch of texts, on all cores.
    func keys(for texts: [String]) -> [DocumentKeys] {
        let threads = config.threads > 0 ? config.threads : ProcessInfo.processInfo.activeProcessorCount
        let chunks = max(1, min(threads, texts.count / 64 + 1))
        let results = UnsafeMutableBufferPointer<DocumentKeys>.allocate(capacity: texts.count)
        defer { results.deallocate() }
        let box = UncheckedSendable(results)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            var tokens: [UInt64] = [], shingles: [UInt64] = [], hashes32: [UInt32] = [], signature: [UInt32] = []
            let lo = texts.count * c / chunks, hi = texts.count * (c + 1) / chunks
            for k in lo..<hi {
                (box.value.baseAddress! + k).initialize(
                    to: keys(for: texts[k], tokens: &tokens, shingles: &shingles, hashes32: &hashes32, signature: &signature))
            }
        }
        let array = Array(results)
        _ = results.baseAddress!.deinitialize(count: texts.count)
        return array
    }

    // MARK: Clustering

    /// The result of clustering: for each document its cluster root (the first document of its cluster).
    public struct Clustering: Sendable {
        public var roots: [Int]
        /// LSH candidate pairs (i < j) that were joined.
        public var pairs: [(Int, Int)]
        public var exactDuplicates: Int
        public var candidatePairs: Int
        public var rejected: Int
    }

    func cluster(_ keys: [DocumentKeys], buckets given: BandBuckets? = nil) throws(DatasetError) -> Clustering {
        let n = keys.count
        var uf = UnionFind(count: n)
        var exactDuplicates = 0
        var pairs: [(Int, Int)] = []
        var isExactDuplicate = [Bool](repeating: false, count: n)
        if config.exact {
            var first: [UInt64: [(UInt64, Int)]] = [:]
            for k in 0..<n {
                let (h1, h2) = keys[k].exact
                if let match = first[h1]?.first(where: { $0.0 == h2 }) {
                    uf.union(match.1, k)
                    exactDuplicates += 1
                    isExactDuplicate[k] = true
                    pairs.append((match.1, k))
                } else {
                    first[h1, default: []].append((h2, k))
                }
            }
        }
        let buckets = given ?? BandBuckets.inMemory(keys, bands: lsh.bands)
        var candidates = 0
        var rejected = 0
        // Entries arrive sorted by (key, document); a group is a run of equal keys. Each member is paired with
        // the earliest member it matches (at most 8 tries when verifying), so only the group's first members
        // are kept.
        let tries = config.verify ? 8 : 1
        var groupKey: UInt64 = 0
        var groupFirst: [Int] = []
        for band in 0..<lsh.bands {
            groupFirst.removeAll(keepingCapacity: true)
            try buckets.forEachSorted(band: band) { e in
                let y = Int(e.document)
                if isExactDuplicate[y] { return }
                if groupFirst.isEmpty || e.key != groupKey {
                    groupKey = e.key
                    groupFirst.removeAll(keepingCapacity: true)
                    groupFirst.append(y)
                    return
                }
                for x in groupFirst {
                    if uf.find(x) == uf.find(y) { break }
                    candidates += 1
                    if let sx = keys[x].shingles, let sy = keys[y].shingles, MinHasher.jaccard(sx, sy) < config.threshold {
                        rejected += 1
                        continue
                    }
                    uf.union(x, y)
                    pairs.append((x, y))
                    break
                }
                if groupFirst.count < tries { groupFirst.append(y) }
            }
        }
        let roots = (0..<n).map { uf.find($0) }
        return Clustering(roots: roots, pairs: pairs, exactDuplicates: exactDuplicates, candidatePairs: candidates, rejected: rejected)
    }

    /// Empty buckets with this config's memory budget, or nil when there is none.
    func makeBuckets(directory: String? = nil) -> BandBuckets? {
        guard config.memoryLimit > 0 else { return nil }
        let dir =
            directory
            ?? (config.spillDirectory.isEmpty
                ? FileManager.default.temporaryDirectory.path : config.spillDirectory)
        return BandBuckets(bands: lsh.bands, memoryLimit: config.memoryLimit, directory: dir)
    }

    /// Clusters texts held in memory (for tests and small inputs).
    public func cluster(texts: [String]) throws(DatasetError) -> Clustering {
        let keys = keys(for: texts)
        guard let buckets = makeBuckets() else { return try cluster(keys) }
        for (k, d) in keys.enumerated() where !d.bandKeys.isEmpty { try buckets.add(document: k, keys: d.bandKeys) }
        return try cluster(keys, buckets: buckets)
    }

    // MARK: Files

    /// Deduplicates JSON Lines files into `output`; writes `{"id", "cluster"}` lines for every document in a
    /// cluster of two or more to `clustersPath`.
    public func run(
        inputs: [String], output: String, clustersPath: String?, strict: Bool = false,
        bad: inout BadInputLog
    ) throws(DatasetError) -> DedupReport {
        if inputs.contains("-") { throw .usage("dedup reads its input twice; give a file, not standard input") }
        let collected = try collectKeys(inputs: inputs, shard: .all, strict: strict, bad: &bad)
        return try finish(collected, inputs: inputs, output: output, clustersPath: clustersPath, strict: strict)
    }

    /// Per-document keys of a slice of the input, with ids and input line numbers (counted across `inputs`).
    struct CollectedKeys {
        var keys: [DocumentKeys] = []
        var ids: [String] = []
        var recordLines: [Int] = []
        /// Per document: the UTF-8 length of its text (0 when read from key files).
        var textBytes: [Int32] = []
        var bytesRead = 0
        /// With a memory limit: the band keys, moved out of `keys` as they come.
        var buckets: BandBuckets?

        /// Appends one document's keys (the band keys go to `buckets` when there are buckets).
        mutating func append(_ documentKeys: DocumentKeys, id: String, line: Int, textBytes n: Int) throws(DatasetError) {
            var d = documentKeys
            if let buckets, !d.bandKeys.isEmpty {
                try buckets.add(document: keys.count, keys: d.bandKeys)
                d.bandKeys = []
            }
            keys.append(d)
            ids.append(id)
            recordLines.append(line)
            textBytes.append(Int32(truncatingIfNeeded: n))
        }
    }

    func collectKeys(inputs: [String], shard: Shard, strict: Bool, bad: inout BadInputLog, spill: Bool = true)
        throws(DatasetError) -> CollectedKeys
    {
        let reader = DocumentReader(paths: inputs, strict: strict, shard: shard)
        var c = CollectedKeys()
        if spill { c.buckets = makeBuckets() }
        var batch: [String] = []
        var ids: [String] = [], lines: [Int] = []
        batch.reserveCapacity(4096)
        func flush() throws(DatasetError) {
            for (k, d) in self.keys(for: batch).enumerated() {
                try c.append(d, id: ids[k], line: lines[k], textBytes: batch[k].utf8.count)
            }
            batch.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            lines.removeAll(keepingCapacity: true)
        }
        while let doc = try reader.next() {
            ids.append(doc.id)
            lines.append(reader.lastRecordLine)
            batch.append(doc.text)
            if batch.count == 4096 { try flush() }
        }
        try flush()
        bad.merge(reader.bad)
        c.bytesRead = reader.bytesRead
        return c
    }

    /// Clusters collected keys, copies the kept input lines to `output` and writes the clusters.
    func finish(_ collected: CollectedKeys, inputs: [String], output: String, clustersPath: String?, strict: Bool)
        throws(DatasetError) -> DedupReport
    {
        var (report, keptLines) = try cluster(collected, clustersPath: clustersPath)
        try copyLines(keptLines, inputs: inputs, output: output, strict: strict, report: &report)
        return report
    }

    /// Clusters collected keys and writes the clusters; returns the report so far (without the output's
    /// counts) and the input line numbers of the kept documents, in increasing order.
    func cluster(_ collected: CollectedKeys, clustersPath: String?) throws(DatasetError) -> (DedupReport, [Int]) {
        var report = DedupReport()
        report.lsh = lsh
        let ids = collected.ids, recordLines = collected.recordLines
        report.documentsIn = ids.count
        report.bytesIn = collected.bytesRead
        let clustering = try cluster(collected.keys, buckets: collected.buckets)
        report.exactDuplicates = clustering.exactDuplicates
        report.candidatePairs = clustering.candidatePairs
        report.rejectedByVerification = clustering.rejected
        let roots = clustering.roots
        var size = [Int32](repeating: 0, count: roots.count)
        for r in roots { size[r] += 1 }
        report.clusters = size.reduce(0) { $0 + ($1 > 1 ? 1 : 0) }
        report.nearDuplicates = roots.enumerated().filter { $0.offset != $0.element }.count - clustering.exactDuplicates
        // The first document of each cluster is kept.
        var keptLines: [Int] = []
        for k in roots.indices where roots[k] == k { keptLines.append(recordLines[k]) }
        report.documentsOut = keptLines.count
        for (k, n) in collected.textBytes.enumerated() {
            report.textBytesIn += Int(n)
            if roots[k] == k { report.textBytesOut += Int(n) }
        }
        if let clustersPath {
            let out = try AtomicWriter(path: clustersPath)
            var clusterNumber = [Int32](repeating: -1, count: roots.count)
            var next: Int32 = 0
            var line: [UInt8] = []
            for k in 0..<roots.count where size[roots[k]] > 1 {
                if clusterNumber[roots[k]] < 0 { clusterNumber[roots[k]] = next; next += 1 }
                line.removeAll(keepingCapacity: true)
                line.append(contentsOf: #"{"id": "#.utf8)
                JSONWriter.appendQuoted(ids[k], to: &line)
                line.append(contentsOf: ", \"cluster\": \(clusterNumber[roots[k]])}\n".utf8)
                try out.write(line)
            }
            try out.finish()
        }
        return (report, keptLines)
    }

    /// Pass 2: copies the input lines numbered `keptLines` (counted across `inputs`), unparsed, to `output`.
    func copyLines(_ keptLines: [Int], inputs: [String], output: String, strict: Bool, report: inout DedupReport)
        throws(DatasetError)
    {
        let writer = try AtomicWriter(path: output)
        var globalLine = 0
        var next = 0
        var documentsOut = 0
        files: for path in inputs {
            guard next < keptLines.count else { break }
            let raw = try ByteReader(path: path)
            while next < keptLines.count {
                let line: ArraySlice<UInt8>?
                do { line = try raw.nextLine() } catch { if strict { throw error }; break }
                guard let line else { continue files }
                globalLine += 1
                if globalLine == keptLines[next] {
                    try writer.write(line)
                    try writer.write(CollectionOfOne(0x0A))
                    next += 1
                    documentsOut += 1
                }
            }
        }
        try writer.finish()
        report.documentsOut = documentsOut
        report.bytesOut = writer.bytesWritten
    }
}

// MARK: - Two-phase dedup for shards

extension Deduplicator {
    static let keyFileMagic = Array("IKDK0001".utf8)

    /// Phase 1 on one shard: writes the keys of the shard's documents (band keys, exact hash, id, input line)
    /// to `path`. Every shard must be given the same `inputs` in the same order.
    public func writeKeys(
        inputs: [String], shard: Shard, path: String, strict: Bool = false,
        bad: inout BadInputLog
    ) throws(DatasetError) -> Int {
        let c = try collectKeys(inputs: inputs, shard: shard, strict: strict, bad: &bad, spill: false)
        var out = Self.keyFileMagic
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        u64(UInt64(lsh.bands)); u64(UInt64(lsh.rows)); u64(UInt64(config.numPerm)); u64(UInt64(c.ids.count))
        for k in c.ids.indices {
            u64(UInt64(c.recordLines[k]))
            u64(c.keys[k].exact.0); u64(c.keys[k].exact.1)
            u64(UInt64(c.keys[k].bandKeys.count))
            for b in c.keys[k].bandKeys { u64(b) }
            let id = Array(c.ids[k].utf8)
            u64(UInt64(id.count))
            out.append(contentsOf: id)
        }
        let w = try AtomicWriter(path: path)
        try w.write(out)
        try w.finish()
        return c.ids.count
    }

    /// Phase 2: merges the key files of all shards, clusters globally and writes the kept documents of
    /// `inputs` (the same list the shards read) to `output`.
    public func merge(
        keyFiles: [String], inputs: [String], output: String, clustersPath: String?,
        strict: Bool = false
    ) throws(DatasetError) -> DedupReport {
        guard !config.verify else { throw .usage("--verify needs the texts; it is not available when merging key files") }
        var entries: [(line: Int, id: String, keys: DocumentKeys)] = []
        for file in keyFiles {
            let bytes = try ByteReader(path: file).readAll()
            var at = 8
            func u64() throws(DatasetError) -> UInt64 {
                guard at + 8 <= bytes.count else { throw .corrupt(file: file, offset: at, message: "key file ends early") }
                var v: UInt64 = 0
                for k in 0..<8 { v |= UInt64(bytes[at + k]) << (8 * k) }
                at += 8
                return v
            }
            guard bytes.count >= 8, Array(bytes[0..<8]) == Self.keyFileMagic else {
                throw .corrupt(file: file, offset: 0, message: "not an intern dedup key file")
            }
            let bands = Int(try u64()), rows = Int(try u64()), perms = Int(try u64())
            guard bands == lsh.bands, rows == lsh.rows, perms == config.numPerm else {
                throw .config(
                    file: file, key: "bands/rows/num_perm",
                    message: "written with \(bands) x \(rows) of \(perms), merging with \(lsh.bands) x \(lsh.rows) of \(config.numPerm)")
            }
            let count = Int(try u64())
            for _ in 0..<count {
                let line = Int(try u64())
                let exact = (try u64(), try u64())
                let n = Int(try u64())
                var bandKeys: [UInt64] = []
                for _ in 0..<n { bandKeys.append(try u64()) }
                let idLength = Int(try u64())
                guard at + idLength <= bytes.count else { throw .corrupt(file: file, offset: at, message: "key file ends early") }
                let id = String(decoding: bytes[at..<(at + idLength)], as: UTF8.self)
                at += idLength
                entries.append((line, id, DocumentKeys(exact: exact, bandKeys: bandKeys, shingles: nil)))
            }
        }
        entries.sort { $0.line < $1.line }
        var c = CollectedKeys()
        c.buckets = makeBuckets()
        for e in entries { try c.append(e.keys, id: e.id, line: e.line, textBytes: 0) }
        entries = []
        return try finish(c, inputs: inputs, output: output, clustersPath: clustersPath, strict: strict)
    }
}

/// Wraps a value for sending into concurrent work that touches disjoint parts of it.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
