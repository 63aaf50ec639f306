// Every optimized kernel against its naive twin on random inputs, with sizes that hit the SIMD8 tails
// (n mod 8 ≠ 0, n < 8) and thread splits that do not divide evenly (3 threads over 1..13 rows).
import InternKernels
import Testing

/// A small deterministic generator for test inputs (SplitMix64).
struct TestRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func float(_ range: ClosedRange<Float> = -1...1) -> Float {
        range.lowerBound + Float(next() >> 40) / Float(1 << 24) * (range.upperBound - range.lowerBound)
    }
    mutating func floats(_ n: Int, _ range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<n).map { _ in float(range) }
    }
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Weight bytes in `type` for f32 values, and the values as that type rounds them.
func encodeWeights(_ values: [Float], as type: WeightType) -> [UInt8] {
    var bytes: [UInt8] = []
    for v in values {
        switch type {
        case .f32: withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
        case .f16: withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { bytes += $0 }
        case .bf16: withUnsafeBytes(of: UInt16(truncatingIfNeeded: v.bitPattern >> 16).littleEndian) { bytes += $0 }
        }
    }
    return bytes
}

@Suite struct KernelTests {
    static let pool3 = ThreadPool(threadCount: 3)

    @Test(arguments: WeightType.allCases, [(1, 1, 1), (1, 13, 7), (3, 5, 16), (4, 9, 33), (6, 13, 64), (9, 31, 100), (5, 22, 259), (2, 8, 8)])
    func matMulMatchesReference(type: WeightType, shape: (Int, Int, Int)) {
        let (tokens, rows, cols) = shape
        var random = TestRandom(state: UInt64(tokens * 1000 + rows * 10 + cols))
        let weights = encodeWeights(random.floats(rows * cols), as: type)
        let input = random.floats(tokens * cols)
        var fast = [Float](repeating: .nan, count: tokens * rows)
        var slow = fast
        var single = fast
        weights.withUnsafeBytes { w in
            matMul(
                &fast, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols,
                pool: Self.pool3)
            matMul(
                &single, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows,
                cols: cols, pool: nil)
            matMulReference(
                &slow, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows,
                cols: cols)
        }
        #expect(maxAbsDiff(fast, slow) < 1e-4 * Float(cols).squareRoot())
        #expect(fast == single, "threaded and single-threaded results differ")
    }

    /// The decode product: rows of 4–8 KiB one at a time (with vector and scalar column tails), other lengths
    /// through `matMul`; close to the reference, bitwise the same threaded or not, alone or in a batch.
    @Test(arguments: WeightType.allCases, [1000, 2048, 2056, 2061, 4096])
    func matMulDecodeMatchesReferenceAndIsBatchInvariant(type: WeightType, cols: Int) {
        let rows = 13, tokens = 5
        var random = TestRandom(state: UInt64(cols * 7 + 3))
        let weights = encodeWeights(random.floats(rows * cols), as: type)
        let input = random.floats(tokens * cols)
        var batch = [Float](repeating: .nan, count: tokens * rows)
        var slow = batch
        weights.withUnsafeBytes { w in
            matMulDecode(&batch, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols, pool: Self.pool3)
            matMulReference(&slow, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols)
            for t in 0..<tokens {
                var alone = [Float](repeating: .nan, count: rows)
                Array(input[(t * cols)..<((t + 1) * cols)]).withUnsafeBufferPointer { x in
                    matMulDecode(&alone, weight: w.baseAddress!, type: type, input: x.baseAddress!, tokens: 1, rows: rows, cols: cols, pool: nil)
                }
                #expect(alone.map(\.bitPattern) == batch[(t * rows)..<((t + 1) * rows)].map(\.bitPattern), "\(type) cols \(cols) token \(t)")
            }
        }
        #expect(maxAbsDiff(batch, slow) < 1e-4 * Float(cols).squareRoot(), "\(type) cols \(cols)")
    }

    /// Each token's row of the product is bitwise the same whether the token is multiplied alone or as
    /// any row of a batch (the 4-token and 1-token loops reduce in one order); continuous batching needs it.
    @Test(arguments: WeightType.allCases, [7, 8, 16, 33, 100])
    func matMulIsBatchInvariant(type: WeightType, cols: Int) {
        let rows = 11, tokens = 9
        var random = TestRandom(state: UInt64(cols * 31 + rows))
        let weights = encodeWeights(random.floats(rows * cols), as: type)
        let input = random.floats(tokens * cols)
        var batch = [Float](repeating: .nan, count: tokens * rows)
        weights.withUnsafeBytes { w in
            matMul(
                &batch, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols,
                pool: Self.pool3)
            for t in 0..<tokens {
                var alone = [Float](repeating: .nan, count: rows)
                Array(input[(t * cols)..<((t + 1) * cols)]).withUnsafeBufferPointer { x in
                    matMul(
                        &alone, weight: w.baseAddress!, type: type, input: x.baseAddress!, tokens: 1, rows: rows,
                        cols: cols, pool: nil)
                }
                let inBatch = Array(batch[(t * rows)..<((t + 1) * rows)])
                #expect(alone.map(\.bitPattern) == inBatch.map(\.bitPattern), "token \(t): alone \(alone) vs in batch \(inBatch)")
            }
        }
    }

    /// Prefill is blocked for the caches: panels of rows staged at once (1 MiB of f32) and blocks of tokens
    /// (512 KiB of activations). 8200 columns give 16-token blocks and 30-row panels (in 6-row tiles), so
    /// 37 tokens and 71 rows cross both kinds of boundary, with token, row and column tails; every token's
    /// row must still be bitwise its product alone, and close to the reference.
    @Test(arguments: WeightType.allCases)
    func prefillBlockingKeepsEveryTokensResult(type: WeightType) {
        let tokens = 37, rows = 71, cols = 8200
        var random = TestRandom(state: 4242)
        let weights = encodeWeights(random.floats(rows * cols), as: type)
        let input = random.floats(tokens * cols)
        var batch = [Float](repeating: .nan, count: tokens * rows)
        var slow = batch
        weights.withUnsafeBytes { w in
            matMul(&batch, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols, pool: Self.pool3)
            matMulReference(&slow, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols)
            input.withUnsafeBufferPointer { x in
                for t in [0, 15, 16, 31, 32, 36] {
                    var one = [Float](repeating: .nan, count: rows)
                    matMul(&one, weight: w.baseAddress!, type: type, input: x.baseAddress! + t * cols, tokens: 1, rows: rows, cols: cols, pool: nil)
                    #expect(Array(batch[(t * rows)..<((t + 1) * rows)]).map(\.bitPattern) == one.map(\.bitPattern), "\(type) token \(t)")
                }
            }
        }
        #expect(maxAbsDiff(batch, slow) < 1e-4 * Float(cols).squareRoot())
    }

    @Test(arguments: WeightType.allCases)
    func matMulResultDoesNotDependOnTokenCount(type: WeightType) {
        // Bit-identical per token whether alone or with others (4-row tiles and tail rows, token pairs and a
        // tail token, a column tail), as batched decode needs.
        let tokens = 5, rows = 11, cols = 45
        var random = TestRandom(state: 99)
        let weights = encodeWeights(random.floats(rows * cols), as: type)
        let input = random.floats(tokens * cols)
        var all = [Float](repeating: .nan, count: tokens * rows)
        weights.withUnsafeBytes { w in
            matMul(&all, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols, pool: Self.pool3)
            input.withUnsafeBufferPointer { x in
                for t in 0..<tokens {
                    var one = [Float](repeating: .nan, count: rows)
                    matMul(&one, weight: w.baseAddress!, type: type, input: x.baseAddress! + t * cols, tokens: 1, rows: rows, cols: cols, pool: nil)
                    #expect(Array(all[(t * rows)..<((t + 1) * rows)]) == one, "\(type) token \(t)")
                }
            }
        }
    }

    @Test func weightLoadersDecodeKnownValues() {
        let values: [Float] = [1, -2, 0.5, 3.25, 0, -0.125, 1024, 7, 1.5]
        for type in WeightType.allCases {
            let bytes = encodeWeights(values, as: type)
            var out = [Float](repeating: .nan, count: values.count)
            bytes.withUnsafeBytes { convertToFloat(&out, from: $0.baseAddress!, type: type, offset: 0, count: values.count) }
            #expect(out == values, "\(type)")
        }
    }

    @Test func f16LoaderHandlesSubnormalsInfinitiesAndNaN() {
        let halves: [Float16] = [
            0, -0.0, 1, -1.5, 65504, -65504, .leastNonzeroMagnitude, 6.1e-5, .leastNormalMagnitude,
            .infinity, -.infinity, 0.333, 3.14, -2.7e-6, 100, 0.1,
        ]
        let bytes = halves.flatMap { h in withUnsafeBytes(of: h.bitPattern.littleEndian) { Array($0) } }
        var out = [Float](repeating: 0, count: halves.count + 1)
        let nanBytes = bytes + withUnsafeBytes(of: Float16.nan.bitPattern.littleEndian) { Array($0) }
        nanBytes.withUnsafeBytes { convertToFloat(&out, from: $0.baseAddress!, type: .f16, offset: 0, count: halves.count + 1) }
        for (i, h) in halves.enumerated() {
            #expect(out[i].bitPattern == Float(h).bitPattern, "lane \(i): \(h) → \(out[i])")
        }
        #expect(out[halves.count].isNaN)
    }

    @Test(arguments: [1, 7, 8, 31, 64, 2049])
    func rmsNormMatchesReference(n: Int) {
        var random = TestRandom(state: UInt64(n))
        let x = random.floats(n, -3...3), w = random.floats(n)
        var fast = [Float](repeating: 0, count: n), slow = fast
        rmsNorm(&fast, input: x, weight: w, count: n, eps: 1e-5)
        rmsNormReference(&slow, input: x, weight: w, count: n, eps: 1e-5)
        #expect(maxAbsDiff(fast, slow) < 1e-5)
    }

    @Test(arguments: [1, 5, 8, 17, 1000])
    func softmaxMatchesReference(n: Int) {
        var random = TestRandom(state: UInt64(n) + 7)
        let x = random.floats(n, -30...30)
        var fast = x, slow = x
        softmax(&fast, count: n)
        softmaxReference(&slow, count: n)
        #expect(maxAbsDiff(fast, slow) < 1e-6)
        #expect(abs(fast.reduce(0, +) - 1) < 1e-5)
    }

    @Test(arguments: [1, 9, 16, 77])
    func siluMulMatchesReference(n: Int) {
        var random = TestRandom(state: UInt64(n) + 11)
        let gate = random.floats(n, -8...8), up = random.floats(n)
        var fast = gate, slow = gate
        siluMul(&fast, up: up, count: n)
        siluMulReference(&slow, up: up, count: n)
        #expect(maxAbsDiff(fast, slow) < 1e-5)
    }

    /// An element's result does not depend on its offset in the call (rows of a batch whose width is not a
    /// multiple of 8 start anywhere): the tail takes the vector arithmetic too.
    @Test func siluMulIsTheSameAtAnyOffset() {
        var random = TestRandom(state: 5)
        let gate = random.floats(77, -9...9), up = random.floats(77)
        var whole = gate
        siluMul(&whole, up: up, count: 77)
        for start in [1, 3, 8, 70] {
            var part = Array(gate[start...])
            Array(up[start...]).withUnsafeBufferPointer { siluMul(&part, up: $0.baseAddress!, count: 77 - start) }
            #expect(part.map(\.bitPattern) == whole[start...].map(\.bitPattern), "offset \(start)")
        }
    }

    /// The vector path's exponential over its whole range: large gates of both signs (e^−|g| stops at ~1e-38,
    /// not at a NaN or an infinity), zeros, and a tail; within 2e-6 relative of the Double reference, or 1e-30
    /// absolute where the true value is below that.
    @Test func siluMulHandlesLargeAndTinyGates() {
        let gate: [Float] = [0, -0.0, 1e-30, -1e-30, 87, -87, 88.8, -88.8, 100, -100, 1e4, -1e4, 3.5, -3.5, 0.5, -0.5, 20, -20, 7]
        let up = [Float](repeating: 1.5, count: gate.count)
        var fast = gate, slow = gate
        siluMul(&fast, up: up, count: gate.count)
        siluMulReference(&slow, up: up, count: gate.count)
        for i in gate.indices {
            #expect(fast[i].isFinite && abs(fast[i] - slow[i]) <= 2e-6 * abs(slow[i]) + 1e-30, "silu(\(gate[i])): \(fast[i]) vs \(slow[i])")
        }
    }

    @Test(arguments: [(1, 2), (3, 12), (2, 32), (4, 64), (2, 40)])
    func ropeMatchesReference(shape: (Int, Int)) {
        let (heads, headDim) = shape
        var random = TestRandom(state: UInt64(heads * 100 + headDim))
        let x = random.floats(heads * headDim)
        let inv = ropeInverseFrequencies(base: 10000, headDim: headDim)
        var cos = [Float](repeating: 0, count: headDim / 2), sin = cos
        ropeCosSin(position: 37, inverseFrequencies: inv, cos: &cos, sin: &sin, halfDim: headDim / 2)
        var fast = x, slow = x
        applyRotaryEmbedding(&fast, heads: heads, headDim: headDim, cos: cos, sin: sin)
        applyRotaryEmbeddingReference(&slow, heads: heads, headDim: headDim, cos: cos, sin: sin)
        #expect(maxAbsDiff(fast, slow) < 1e-6)
        // A rotation keeps each (x1[i], x2[i]) pair's length.
        let half = headDim / 2
        for i in 0..<half {
            let before = x[i] * x[i] + x[i + half] * x[i + half]
            let after = fast[i] * fast[i] + fast[i + half] * fast[i + half]
            #expect(abs(before - after) < 1e-5)
        }
    }

    @Test func ropeAtPositionZeroIsIdentity() {
        let inv = ropeInverseFrequencies(base: 1e6, headDim: 64)
        var cos = [Float](repeating: 0, count: 32), sin = cos
        ropeCosSin(position: 0, inverseFrequencies: inv, cos: &cos, sin: &sin, halfDim: 32)
        var random = TestRandom(state: 3)
        let x = random.floats(128)
        var y = x
        applyRotaryEmbedding(&y, heads: 2, headDim: 64, cos: cos, sin: sin)
        #expect(x == y)
    }

    /// Attention over each cache type against the reference on the same stored rows (read back as f32),
    /// so only the kernel's arithmetic is compared; head dims hit the 32-lane, 8-lane and scalar paths
    /// (q8_0 only where heads are whole blocks of 32); the last three run prefill tiles (with leftover rows).
    @Test(
        arguments: KVCacheType.allCases,
        [(1, 0, 2, 2, 8), (3, 0, 4, 2, 12), (1, 5, 4, 1, 32), (5, 2, 8, 2, 13), (4, 7, 6, 3, 64), (2, 9, 4, 2, 128), (5, 3, 6, 2, 64)])
    func attentionMatchesReference(type: KVCacheType, shape: (Int, Int, Int, Int, Int)) {
        let (tokens, start, heads, kvHeads, headDim) = shape
        guard type.unsupportedReason(headDim: headDim) == nil else { return }
        var random = TestRandom(state: UInt64(tokens * 7 + start * 13 + heads * 17 + headDim))
        let positions = start + tokens, rowSize = kvHeads * headDim
        let q = random.floats(tokens * heads * headDim, -2...2)
        let k = random.floats(positions * rowSize, -2...2)
        let v = random.floats(positions * rowSize)
        let storage = KVStorage(type: type, positions: positions, rowSize: rowSize)
        storage.layer.store(position: 0, keys: k, values: v, rows: positions)
        var fast = [Float](repeating: .nan, count: tokens * heads * headDim), slow = fast
        var scratch = [Float](repeating: 0, count: 3 * attentionScratchRows * positions)
        attention(
            &fast, query: q, cache: storage.layer, tokens: tokens, startPosition: start, heads: heads,
            kvHeads: kvHeads, headDim: headDim, scratch: &scratch, pool: Self.pool3)
        attentionReference(
            &slow, query: q, cache: storage.layer, tokens: tokens, startPosition: start, heads: heads,
            kvHeads: kvHeads, headDim: headDim)
        #expect(maxAbsDiff(fast, slow) < 1e-5)
    }

    /// Prefill runs jobs of up to 32 rows (tokens × the heads of a KV group) in tiles of four over blocks of
    /// 64 positions: each token's output must be bitwise what it gets as a one-token call (decode), for
    /// whole tiles, leftover rows, every group size, several jobs per KV head and several position blocks.
    @Test(
        arguments: KVCacheType.allCases,
        [(9, 0, 2, 2, 32), (7, 5, 4, 2, 64), (6, 3, 6, 2, 128), (5, 11, 8, 2, 64), (3, 1, 8, 1, 32), (40, 70, 4, 2, 32), (21, 60, 6, 2, 64)])
    func attentionTilesAreBitwiseTheTokensAlone(type: KVCacheType, shape: (Int, Int, Int, Int, Int)) {
        let (tokens, start, heads, kvHeads, headDim) = shape
        var random = TestRandom(state: UInt64(tokens * 5 + start * 11 + heads * 3 + headDim))
        let positions = start + tokens, rowSize = kvHeads * headDim, width = heads * headDim
        let q = random.floats(tokens * width, -2...2)
        let storage = KVStorage(type: type, positions: positions, rowSize: rowSize)
        let keys = random.floats(positions * rowSize, -2...2), values = random.floats(positions * rowSize)
        storage.layer.store(position: 0, keys: keys, values: values, rows: positions)
        var scratch = [Float](repeating: 0, count: 3 * attentionScratchRows * positions)
        var together = [Float](repeating: .nan, count: tokens * width)
        attention(
            &together, query: q, cache: storage.layer, tokens: tokens, startPosition: start, heads: heads,
            kvHeads: kvHeads, headDim: headDim, scratch: &scratch, pool: Self.pool3)
        for t in 0..<tokens {
            var alone = [Float](repeating: .nan, count: width)
            attention(
                &alone, query: Array(q[(t * width)..<((t + 1) * width)]), cache: storage.layer, tokens: 1,
                startPosition: start + t, heads: heads, kvHeads: kvHeads, headDim: headDim, scratch: &scratch, pool: nil)
            #expect(alone.map(\.bitPattern) == together[(t * width)..<((t + 1) * width)].map(\.bitPattern), "\(type) token \(t)")
        }
    }

    /// Decode at 512+ cached positions splits a KV head's scores by position ranges and its values by 32-lane
    /// blocks between the pool's workers: bitwise what one worker computes, and close to the reference.
    @Test(arguments: KVCacheType.allCases, [(6, 2, 64), (9, 3, 64), (8, 1, 32), (10, 2, 128)])
    func splitDecodeIsBitwiseTheUnsplitOne(type: KVCacheType, shape: (Int, Int, Int)) {
        let (heads, kvHeads, headDim) = shape
        var random = TestRandom(state: UInt64(heads * 31 + kvHeads * 7 + headDim))
        let start = 1100, positions = start + 1, rowSize = kvHeads * headDim, width = heads * headDim
        let q = random.floats(width, -2...2)
        let storage = KVStorage(type: type, positions: positions, rowSize: rowSize)
        let keys = random.floats(positions * rowSize, -2...2), values = random.floats(positions * rowSize)
        storage.layer.store(position: 0, keys: keys, values: values, rows: positions)
        var scratch = [Float](repeating: 0, count: 3 * attentionScratchRows * positions)
        var split = [Float](repeating: .nan, count: width), single = split, slow = split
        attention(
            &split, query: q, cache: storage.layer, tokens: 1, startPosition: start, heads: heads, kvHeads: kvHeads,
            headDim: headDim, scratch: &scratch, pool: Self.pool3)
        attention(
            &single, query: q, cache: storage.layer, tokens: 1, startPosition: start, heads: heads, kvHeads: kvHeads,
            headDim: headDim, scratch: &scratch, pool: nil)
        attentionReference(&slow, query: q, cache: storage.layer, tokens: 1, startPosition: start, heads: heads, kvHeads: kvHeads, headDim: headDim)
        #expect(split.map(\.bitPattern) == single.map(\.bitPattern), "\(type) \(shape)")
        #expect(maxAbsDiff(split, slow) < 1e-5)
    }

    /// Stored rows read back within each type's rounding: f32 exact, f16 within 2⁻¹¹ relative, q8_0
    /// within half a step (max|x| / 254) of each block of 32.
    @Test(arguments: KVCacheType.allCases)
    func kvRowsRoundTripWithinTheirRounding(type: KVCacheType) {
        var random = TestRandom(state: 41)
        let rowSize = 64, positions = 5
        var k = random.floats(positions * rowSize, -3...3)
        k[7] = 0
        for i in 32..<64 { k[i] = 0 }  // an all-zero block: scale 0, codes 0
        let v = random.floats(positions * rowSize, -0.01...0.01)
        let storage = KVStorage(type: type, positions: positions, rowSize: rowSize)
        storage.layer.store(position: 0, keys: k, values: v, rows: 3)
        storage.layer.store(position: 3, keys: Array(k[(3 * rowSize)...]), values: Array(v[(3 * rowSize)...]), rows: 2)
        var row = [Float](repeating: .nan, count: rowSize)
        for (name, x) in [("keys", k), ("values", v)] {
            for p in 0..<positions {
                if name == "keys" { storage.layer.key(p, into: &row) } else { storage.layer.value(p, into: &row) }
                for i in 0..<rowSize {
                    let exact = x[p * rowSize + i]
                    let block = x[(p * rowSize + i) / 32 * 32..<((p * rowSize + i) / 32 * 32 + 32)]
                    let bound: Float =
                        switch type {
                        case .f32: 0
                        case .f16: max(abs(exact) * 0x1p-11, 0x1p-25)  // subnormals: half the smallest step
                        case .q8_0: block.map(abs).max()! / 254 * 1.0001
                        }
                    #expect(abs(row[i] - exact) <= bound, "\(type) \(name) position \(p) element \(i): \(row[i]) for \(exact)")
                }
            }
        }
    }

    @Test func threadPoolCoversEveryIndexOnce() {
        for count in [1, 2, 3, 4, 10, 13, 1000] {
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { buffer in
                let p = SendablePointer(buffer.baseAddress!)
                Self.pool3.parallelFor(count) { range, _ in
                    for i in range { p.base[i] += 1 }
                }
            }
            #expect(hits.allSatisfy { $0 == 1 }, "count \(count)")
        }
        #expect(ThreadPool.split(10, parts: 3, part: 0) == 0..<4)
        #expect(ThreadPool.split(10, parts: 3, part: 2) == 7..<10)
    }
}

/// Owned storage for one KV layer of `type`, for kernel tests.
final class KVStorage {
    let layer: KVLayer

    init(type: KVCacheType, positions: Int, rowSize: Int) {
        let bytes = positions * rowSize * type.elementBytes
        let blocks = type == .q8_0 ? positions * rowSize / KVCacheType.blockSize : 0
        layer = KVLayer(
            type: type, rowSize: rowSize,
            keys: .allocate(byteCount: bytes, alignment: 64), values: .allocate(byteCount: bytes, alignment: 64),
            keyScales: type == .q8_0 ? .allocate(capacity: blocks) : nil,
            valueScales: type == .q8_0 ? .allocate(capacity: blocks) : nil)
    }

    deinit {
        layer.keys.deallocate()
        layer.values.deallocate()
        layer.keyScales?.deallocate()
        layer.valueScales?.deallocate()
    }
}
