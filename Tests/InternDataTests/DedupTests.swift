import Foundation
import Testing

@testable import InternData

@Suite("Dedup stage: MinHash-LSH")
struct DedupTests {
    struct ParamCase: Decodable { let threshold: Double; let num_perm: Int; let bands: Int; let rows: Int }
    struct ParamFile: Decodable { let cases: [ParamCase] }

    @Test func bandsAndRowsMatchDatasketch() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: DataFixtures.fixture("lsh_params.json")))
        let cases = try JSONDecoder().decode(ParamFile.self, from: data).cases
        #expect(cases.count == 15)
        for c in cases {
            let p = LSHParameters.optimal(threshold: c.threshold, numPerm: c.num_perm)
            #expect(p == LSHParameters(bands: c.bands, rows: c.rows), "threshold \(c.threshold), num_perm \(c.num_perm)")
        }
    }

    @Test func signatureEstimatesJaccard() {
        let hasher = MinHasher(numPerm: 256, ngram: 3)
        let a = (0..<300).map { "w\($0)" }
        let b = Array(a[0..<240]) + (0..<60).map { "x\($0)" }
        let sa = hasher.shingleSet(a.joined(separator: " ")), sb = hasher.shingleSet(b.joined(separator: " "))
        let truth = MinHasher.jaccard(sa, sb)
        let estimate = MinHasher.estimatedJaccard(hasher.signature(a.joined(separator: " "))!, hasher.signature(b.joined(separator: " "))!)
        #expect(abs(truth - 238.0 / 358.0) < 1e-9)
        #expect(abs(estimate - truth) < 0.08, "estimate \(estimate), truth \(truth)")
    }

    struct MinHashCase: Decodable { let seed: UInt64; let num_perm: Int; let ngram: Int; let text: String; let shingles: Int; let hashvalues: [UInt32] }
    struct MinHashFile: Decodable { let cases: [MinHashCase] }

    @Test func datasketchSchemeEqualsDatasketchBitForBit() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: DataFixtures.fixture("datasketch_minhash.json")))
        let cases = try JSONDecoder().decode(MinHashFile.self, from: data).cases
        #expect(cases.count == 15)
        for c in cases {
            let hasher = MinHasher(numPerm: c.num_perm, ngram: c.ngram, seed: c.seed, scheme: .datasketch)
            var tokens: [UInt64] = [], hashes: [UInt32] = []
            hasher.datasketchHashes(c.text, tokens: &tokens, into: &hashes)
            #expect(hashes.count == c.shingles, "\(c.text.prefix(30))")
            #expect(hasher.schemeSignature(c.text) == c.hashvalues, "seed \(c.seed), num_perm \(c.num_perm): \(c.text.prefix(30))")
        }
    }

    /// Expected values from Python's hashlib (struct.unpack("<I", sha1(data).digest()[:4])), across the
    /// padding boundaries (55, 56, 64 bytes) and several blocks.
    @Test(
        arguments: [
            ("", 0xeea3_39da), ("abc", 0x363e_99a9), (String(repeating: "a", count: 55), 0xdcbb_c8c1),
            (String(repeating: "a", count: 56), 0x0f33_dbc2), (String(repeating: "a", count: 64), 0x82ba_9800),
            (String(repeating: "a", count: 1000), 0x6c9a_1e29), ("The quick brown fox jumps over the lazy dog 中文", 0x4163_7649),
        ] as [(String, UInt32)])
    func sha1MatchesHashlib(text: String, expected: UInt32) {
        #expect(MinHasher.sha1Hash32(Array(text.utf8)) == expected)
    }

    @Test(arguments: [1, 7, 64, 128, 129])
    func kernelMatchesReference(numPerm: Int) {
        let hasher = MinHasher(numPerm: numPerm, ngram: 2, seed: 9)
        var rng = SplitMix64(seed: UInt64(numPerm))
        for count in [0, 1, 3, 100] {
            let shingles = (0..<count).map { _ in rng.next() }
            var sig: [UInt32] = []
            hasher.signature(shingles: shingles, into: &sig)
            #expect(sig == hasher.signatureReference(shingles: shingles), "numPerm \(numPerm), \(count) shingles")
        }
    }

    /// The C batch (two SHA-1 blocks at a time, shingles built in place) against shingle strings hashed one
    /// by one, with tokens long enough that some shingles need two or more blocks.
    @Test func batchedShingleHashesEqualOneByOne() {
        var rng = SplitMix64(seed: 5)
        for ngram in [1, 3, 5] {
            var words: [String] = []
            for _ in 0..<301 {
                let length = rng.next() % 10 == 0 ? 20 + Int(rng.next() % 60) : 1 + Int(rng.next() % 9)
                words.append(String((0..<length).map { _ in Character(Unicode.Scalar(UInt8(97 + rng.next() % 26))) }))
            }
            let hasher = MinHasher(numPerm: 16, ngram: ngram, scheme: .datasketch)
            var tokens: [UInt64] = [], hashes: [UInt32] = []
            hasher.datasketchHashes(words.joined(separator: " \n"), tokens: &tokens, into: &hashes)
            let expected = (0...(words.count - ngram)).map { s in
                MinHasher.fmix32(MinHasher.sha1Hash32(Array(words[s..<(s + ngram)].joined(separator: " ").utf8)))
            }
            #expect(hashes == expected, "ngram \(ngram)")
        }
    }

    /// The register-blocked AVX2 kernel of the datasketch scheme against a plain loop (32-lane blocks,
    /// 8-lane blocks and a scalar tail).
    @Test(arguments: [1, 7, 8, 40, 128, 131])
    func datasketchKernelMatchesReference(numPerm: Int) {
        let hasher = MinHasher(numPerm: numPerm, ngram: 2, seed: 3, scheme: .datasketch)
        var rng = SplitMix64(seed: UInt64(numPerm))
        for count in [0, 1, 5, 200] {
            let xs = (0..<count).map { _ in UInt32(truncatingIfNeeded: rng.next()) }
            var sig: [UInt32] = []
            hasher.signature32(hashes: xs, into: &sig)
            var reference = [UInt32](repeating: .max, count: numPerm)
            for x in xs {
                for k in 0..<numPerm { reference[k] = min(reference[k], hasher.a32[k] &* x &+ hasher.b32[k]) }
            }
            #expect(sig == reference, "numPerm \(numPerm), \(count) hashes")
        }
    }

    @Test func chineseUsesCharacterShinglesAndShortDocumentsAreKept() {
        var tokens: [UInt64] = []
        MinHasher.tokenHashes("中文分词，Hello World 2024！", into: &tokens)
        #expect(tokens.count == 7)  // 中 文 分 词 hello world 2024
        let hasher = MinHasher(ngram: 5)
        #expect(hasher.shingleSet("短文").count == 1)  // fewer tokens than n: one shingle, not skipped
        #expect(hasher.signature("，。！") == nil)
    }

    /// A corpus of random "sentences" with planted near-duplicates: copies with k word substitutions.
    static func plantedCorpus(seed: UInt64, bases: Int, copies: Int) -> (texts: [String], group: [Int]) {
        var rng = SplitMix64(seed: seed)
        let vocabulary = (0..<5000).map { k in "w" + String(k, radix: 36) + String(UInt8(97 + k % 26), radix: 10) }
        var texts: [String] = [], group: [Int] = []
        for g in 0..<bases {
            var words = (0..<150).map { _ in vocabulary[Int(rng.next() % 5000)] }
            texts.append(words.joined(separator: " ")); group.append(g)
            for _ in 0..<copies {
                var copy = words
                let edits = Int(rng.next() % 16)  // 0..15 substitutions: Jaccard from 1 down to about 0.4
                for _ in 0..<edits { copy[Int(rng.next() % 150)] = vocabulary[Int(rng.next() % 5000)] }
                texts.append(copy.joined(separator: " ")); group.append(g)
            }
            words.shuffle(using: &rng)
        }
        return (texts, group)
    }

    static func pairs(_ roots: [Int]) -> Set<[Int]> {
        var members: [Int: [Int]] = [:]
        for (k, r) in roots.enumerated() { members[r, default: []].append(k) }
        var out = Set<[Int]>()
        for m in members.values where m.count > 1 {
            for i in 0..<m.count { for j in (i + 1)..<m.count { out.insert([m[i], m[j]]) } }
        }
        return out
    }

    @Test(arguments: [false, true], MinHasher.Scheme.allCases)
    func plantedNearDuplicatesPrecisionAndRecall(verify: Bool, scheme: MinHasher.Scheme) throws {
        let (texts, group) = Self.plantedCorpus(seed: 42, bases: 60, copies: 4)
        var config = DedupConfig()
        config.verify = verify
        config.hashScheme = scheme
        let dedup = try Deduplicator(config: config)
        #expect(dedup.lsh == LSHParameters(bands: 9, rows: 13))
        let hasher = MinHasher(numPerm: 128, ngram: 5)
        let sets = texts.map(hasher.shingleSet)
        var truth = Set<[Int]>(), strong = Set<[Int]>()
        for i in 0..<texts.count {
            for j in (i + 1)..<texts.count where group[i] == group[j] {
                let jaccard = MinHasher.jaccard(sets[i], sets[j])
                if jaccard >= 0.8 { truth.insert([i, j]) }
                if jaccard >= 0.9 { strong.insert([i, j]) }
            }
        }
        #expect(truth.count > 50 && strong.count > 20)
        // Found pairs: the LSH pairs that were joined; recall counts pairs that ended in one cluster.
        let clustering = try dedup.cluster(texts: texts)
        let found = Set(clustering.pairs.map { [$0.0, $0.1] })
        let precision = Double(found.intersection(truth).count) / Double(max(1, found.count))
        let clustered = Self.pairs(clustering.roots)
        let recall = Double(clustered.intersection(truth).count) / Double(truth.count)
        let strongRecall = Double(clustered.intersection(strong).count) / Double(strong.count)
        // 9 bands x 13 rows put the S-curve's midpoint near 0.85 (datasketch's choice for 0.8), so pairs just
        // above the threshold are found less often than pairs well above it.
        #expect(recall >= 0.8, "recall \(recall) (\(truth.count) true pairs)")
        #expect(strongRecall >= 0.9, "recall of pairs with Jaccard >= 0.9: \(strongRecall)")
        #expect(precision >= (verify ? 1.0 : 0.75), "precision \(precision) of \(found.count) joined pairs")
        // Nothing is joined across groups (their Jaccard is near 0).
        #expect(clustering.pairs.allSatisfy { group[$0.0] == group[$0.1] })
        if verify {
            #expect(clustering.pairs.allSatisfy { MinHasher.jaccard(sets[$0.0], sets[$0.1]) >= 0.8 })
        }
    }

    /// A budget of a kilobyte makes the band buckets spill to many sorted runs on disk; the clusters,
    /// joined pairs and files must be those of the in-memory run.
    @Test(arguments: [false, true])
    func spilledBucketsGiveTheInMemoryClusters(verify: Bool) throws {
        let dir = DataFixtures.scratchDirectory()
        let (texts, _) = Self.plantedCorpus(seed: 8, bases: 40, copies: 4)
        let input = dir + "/in.jsonl"
        let w = try DocumentWriter(path: input)
        for (k, t) in texts.enumerated() { try w.write(Document(id: "d\(k)", text: t)) }
        try w.finish()
        var config = DedupConfig()
        config.verify = verify
        let inMemory = try Deduplicator(config: config)
        config.memoryLimit = 1024  // 64 entries: about 20 runs
        config.spillDirectory = dir
        let spilling = try Deduplicator(config: config)
        let buckets = try #require(spilling.makeBuckets())
        let keys = inMemory.keys(for: texts)
        for (k, d) in keys.enumerated() { try buckets.add(document: k, keys: d.bandKeys) }
        #expect(buckets.files.count >= 10)
        let expected = try inMemory.cluster(keys)
        let got = try spilling.cluster(keys, buckets: buckets)
        #expect(got.roots == expected.roots && expected.roots != Array(expected.roots.indices))
        #expect(got.pairs.map { [$0.0, $0.1] } == expected.pairs.map { [$0.0, $0.1] })
        #expect(got.candidatePairs == expected.candidatePairs)
        // Through the files: the same kept documents and clusters.
        var bad = BadInputLog()
        let a = try inMemory.run(inputs: [input], output: dir + "/a.jsonl", clustersPath: dir + "/a-clusters.jsonl", bad: &bad)
        let b = try spilling.run(inputs: [input], output: dir + "/b.jsonl", clustersPath: dir + "/b-clusters.jsonl", bad: &bad)
        #expect(a == b && a.clusters > 10)
        #expect(try String(contentsOfFile: dir + "/a.jsonl", encoding: .utf8) == String(contentsOfFile: dir + "/b.jsonl", encoding: .utf8))
        #expect(
            try String(contentsOfFile: dir + "/a-clusters.jsonl", encoding: .utf8)
                == String(contentsOfFile: dir + "/b-clusters.jsonl", encoding: .utf8))
        // Spill files are removed once the buckets are gone.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".run") }
        #expect(left.count == buckets.files.count)  // only this test's own `buckets` are still alive
    }

    @Test func shardedTwoPhaseDedupEqualsOneProcess() throws {
        let dir = DataFixtures.scratchDirectory()
        let (texts, _) = Self.plantedCorpus(seed: 5, bases: 30, copies: 3)
        // Two input files, so that line numbers run across files.
        let inputs = [dir + "/a.jsonl", dir + "/b.jsonl.gz"]
        for (f, part) in [(inputs[0], texts.prefix(50)), (inputs[1], texts.dropFirst(50))] {
            let w = try DocumentWriter(path: f)
            for (k, t) in zip(part.indices, part) { try w.write(Document(id: "d\(k)", text: t)) }
            try w.finish()
        }
        let dedup = try Deduplicator(config: DedupConfig())
        var bad = BadInputLog()
        let whole = try dedup.run(inputs: inputs, output: dir + "/one.jsonl", clustersPath: dir + "/one-clusters.jsonl", bad: &bad)
        var keyFiles: [String] = []
        var total = 0
        for k in 0..<3 {
            keyFiles.append(dir + "/keys-\(k).ikdk")
            total += try dedup.writeKeys(inputs: inputs, shard: Shard(index: k, count: 3), path: keyFiles[k], bad: &bad)
        }
        #expect(total == texts.count)
        let merged = try dedup.merge(
            keyFiles: keyFiles.reversed(), inputs: inputs, output: dir + "/merged.jsonl",
            clustersPath: dir + "/merged-clusters.jsonl")
        #expect(merged.documentsOut == whole.documentsOut && merged.clusters == whole.clusters && whole.clusters > 10)
        #expect(try DataFixtures.readDocuments(dir + "/merged.jsonl") == DataFixtures.readDocuments(dir + "/one.jsonl"))
        #expect(
            try String(contentsOfFile: dir + "/merged-clusters.jsonl", encoding: .utf8)
                == String(contentsOfFile: dir + "/one-clusters.jsonl", encoding: .utf8))
    }

    @Test func runKeepsFirstOfEachClusterAndWritesClusters() throws {
        let dir = DataFixtures.scratchDirectory()
        let input = dir + "/in.jsonl.gz", output = dir + "/out.jsonl", clusters = dir + "/clusters.jsonl"
        let base = DataFixtures.english
        let nearCopy = base.replacingOccurrences(of: "pale autumn sky", with: "pale winter sky")
        let texts = [
            base, DataFixtures.chinese, "  " + base.uppercased() + "\n", nearCopy, "Something else entirely, short.",
            DataFixtures.chinese.replacingOccurrences(of: "面包店", with: "咖啡店"),
        ]
        let w = try DocumentWriter(path: input)
        for (k, t) in texts.enumerated() { try w.write(Document(id: "d\(k)", text: t)) }
        try w.finish()
        let dedup = try Deduplicator(config: DedupConfig())
        var bad = BadInputLog()
        let report = try dedup.run(inputs: [input], output: output, clustersPath: clusters, bad: &bad)
        #expect(report.documentsIn == 6)
        #expect(report.exactDuplicates == 1)  // d2: the same text up to case and whitespace
        #expect(try DataFixtures.readDocuments(output).map(\.id) == ["d0", "d1", "d4"])
        let lines = try String(contentsOfFile: clusters, encoding: .utf8).split(separator: "\n")
        #expect(
            lines == [
                #"{"id": "d0", "cluster": 0}"#, #"{"id": "d1", "cluster": 1}"#, #"{"id": "d2", "cluster": 0}"#,
                #"{"id": "d3", "cluster": 0}"#, #"{"id": "d5", "cluster": 1}"#,
            ])
        #expect(report.clusters == 2 && report.documentsOut == 3)
    }
}
