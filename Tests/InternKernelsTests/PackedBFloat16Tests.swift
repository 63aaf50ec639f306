// The 12-bit packed bf16 matrices: packing is lossless (exceptions included), the decode kernels (exact f32
// activations; bf16-rounded ones on AVX512-BF16 hosts) match their naive twins over both of their paths (one
// row, 4-row tiles) and uneven thread splits, and a token's result does not depend on the batch.
import InternKernels
import Testing

@Suite struct PackedBFloat16Tests {
    /// bf16 weights like `intern init`'s (uniform, scale 0.02) with a sprinkling of values far off that scale
    /// (exceptions), exact zeros of both signs and subnormals; and f32 activations.
    static func operands(tokens: Int, rows: Int, cols: Int, seed: UInt64) -> (weights: [UInt16], input: [Float]) {
        var rng = SplitMix64(seed: seed)
        let specials: [Float] = [0, -0.0, 1e-30, -3e-12, 7.5, -1200, 1e-39, Float.leastNonzeroMagnitude]
        let weights = (0..<(rows * cols)).map { i -> UInt16 in
            let value = i % 97 == 5 ? specials[i / 97 % specials.count] : rng.nextFloat() * 0.0346
            return UInt16(truncatingIfNeeded: value.bitPattern >> 16)
        }
        return (weights, (0..<(tokens * cols)).map { _ in rng.nextFloat() })
    }

    static func pack(_ weights: [UInt16], rows: Int, cols: Int, pool: ThreadPool? = nil) -> PackedBFloat16Matrix? {
        weights.withUnsafeBytes { PackedBFloat16Matrix(bf16: $0.baseAddress!, rows: rows, cols: cols, pool: pool, maxExceptionFraction: 0.05) }
    }

    @Test(arguments: [(1, 64), (5, 128), (37, 4160)])
    func packingIsLossless(shape: (rows: Int, cols: Int)) throws {
        let (weights, _) = Self.operands(tokens: 0, rows: shape.rows, cols: shape.cols, seed: 3)
        let packed = try #require(Self.pack(weights, rows: shape.rows, cols: shape.cols, pool: ThreadPool(threadCount: 3)))
        // Small matrices hold few specials, which then fit the table; the large one must have exceptions.
        #expect(shape.rows * shape.cols < 10_000 || packed.exceptionCount > 0, "the specials should not all fit the table")
        #expect(packed.table[0] == 0)
        var row = [UInt16](repeating: 0, count: shape.cols)
        for r in 0..<shape.rows {
            row.withUnsafeMutableBufferPointer { packed.unpackRow(r, into: $0.baseAddress!) }
            #expect(row == Array(weights[(r * shape.cols)..<((r + 1) * shape.cols)]), "row \(r)")
        }
    }

    // Rows around the 4-row tile and uneven splits over 3 workers; columns on the one-row path (≤ 4096) and
    // on the tile path.
    @Test(arguments: [(1, 1), (2, 7), (3, 37)], [64, 1024, 4160])
    func matchesReferenceAndBFloat16Product(shape: (tokens: Int, rows: Int), cols: Int) throws {
        let (weights, input) = Self.operands(tokens: shape.tokens, rows: shape.rows, cols: cols, seed: 11)
        let packed = try #require(Self.pack(weights, rows: shape.rows, cols: cols))
        #expect(shape.rows * cols < 10_000 || packed.exceptionCount > 0, "exceptions should take part")
        let count = shape.tokens * shape.rows
        var got = [Float](repeating: .nan, count: count), want = got, plain = got
        packed.multiply(&got, input: input, tokens: shape.tokens, pool: ThreadPool(threadCount: 3))
        packed.multiplyReference(&want, input: input, tokens: shape.tokens)
        weights.withUnsafeBytes {
            matMul(&plain, weight: $0.baseAddress!, type: .bf16, input: input, tokens: shape.tokens, rows: shape.rows, cols: cols, pool: nil)
        }
        // Sums of |w·x| bound the rounding of any order of f32 additions.
        let scale = (0..<count).map { i -> Float in
            let (t, r) = (i / shape.rows, i % shape.rows)
            return (0..<cols).reduce(0) { $0 + abs(Float(bitPattern: UInt32(weights[r * cols + $1]) << 16) * input[t * cols + $1]) }
        }
        for i in 0..<count {
            #expect(abs(got[i] - want[i]) <= 1e-5 * scale[i] + 1e-30, "output \(i): \(got[i]) vs reference \(want[i])")
            #expect(abs(got[i] - plain[i]) <= 1e-5 * scale[i] + 1e-30, "output \(i): \(got[i]) vs bf16 matMul \(plain[i])")
        }
    }

    // bf16-rounded activations (`vdpbf16ps`): one-row up to 8192 columns, 4-row tiles beyond (8256); rows around
    // the tile and uneven splits over 3 workers. The tolerance is far below the activations' rounding (relative
    // 2^-9 a product), so exact f32 activations would fail it.
    @Test(.enabled(if: bf16PrefillIsVectorized), arguments: [(1, 1), (2, 7), (3, 37)], [64, 1024, 8256])
    func bfloat16DecodeMatchesReference(shape: (tokens: Int, rows: Int), cols: Int) throws {
        let (weights, input) = Self.operands(tokens: shape.tokens, rows: shape.rows, cols: cols, seed: 13)
        let packed = try #require(Self.pack(weights, rows: shape.rows, cols: cols))
        #expect(shape.rows * cols < 10_000 || packed.exceptionCount > 0, "exceptions should take part")
        let count = shape.tokens * shape.rows
        var got = [Float](repeating: .nan, count: count), want = got, exact = got
        packed.multiplyBFloat16(&got, input: input, tokens: shape.tokens, pool: ThreadPool(threadCount: 3))
        packed.multiplyBFloat16Reference(&want, input: input, tokens: shape.tokens)
        packed.multiplyReference(&exact, input: input, tokens: shape.tokens)
        for i in 0..<count {
            let (t, r) = (i / shape.rows, i % shape.rows)
            let scale = (0..<cols).reduce(Float(0)) {
                $0 + abs(Float(bitPattern: UInt32(weights[r * cols + $1]) << 16) * input[t * cols + $1])
            }
            #expect(abs(got[i] - want[i]) <= 1e-5 * scale + 1e-30, "output \(i): \(got[i]) vs reference \(want[i])")
        }
        if cols >= 1024 { #expect(got != exact, "the activations should be rounded") }
    }

    // Prefill (the GEMM of PrefillGEMM.swift): token counts around its token blocks and their 4- and 1-token
    // tails, rows around its micro-panels, columns within one and across many 256-column blocks; 2 workers.
    @Test(arguments: [(4, 6), (5, 13), (9, 31), (14, 70)], [64, 1024, 4160])
    func prefillMatchesReference(shape: (tokens: Int, rows: Int), cols: Int) throws {
        let (weights, input) = Self.operands(tokens: shape.tokens, rows: shape.rows, cols: cols, seed: 17)
        let packed = try #require(Self.pack(weights, rows: shape.rows, cols: cols))
        let count = shape.tokens * shape.rows
        var got = [Float](repeating: .nan, count: count), want = got
        packed.multiplyPrefill(&got, input: input, tokens: shape.tokens, pool: ThreadPool(threadCount: 2))
        packed.multiplyReference(&want, input: input, tokens: shape.tokens)
        for i in 0..<count {
            let (t, r) = (i / shape.rows, i % shape.rows)
            let scale = (0..<cols).reduce(Float(0)) {
                $0 + abs(Float(bitPattern: UInt32(weights[r * cols + $1]) << 16) * input[t * cols + $1])
            }
            #expect(abs(got[i] - want[i]) <= 1e-5 * scale + 1e-30, "output \(i): \(got[i]) vs reference \(want[i])")
        }
    }

    /// Prefill: a token's outputs are bitwise the same whatever the call's other tokens.
    @Test func prefillResultDoesNotDependOnTokenCount() throws {
        let (tokens, rows, cols) = (17, 40, 576)
        let (weights, input) = Self.operands(tokens: tokens, rows: rows, cols: cols, seed: 23)
        let packed = try #require(Self.pack(weights, rows: rows, cols: cols))
        #expect(packed.exceptionCount > 0, "exceptions should take part")
        var all = [Float](repeating: .nan, count: tokens * rows)
        packed.multiplyPrefill(&all, input: input, tokens: tokens, pool: ThreadPool(threadCount: 2))
        input.withUnsafeBufferPointer { x in
            for (first, count) in [(0, 1), (16, 1), (2, 4), (5, 12)] {
                var part = [Float](repeating: .nan, count: count * rows)
                packed.multiplyPrefill(&part, input: x.baseAddress! + first * cols, tokens: count, pool: nil)
                #expect(Array(all[(first * rows)..<((first + count) * rows)]) == part, "tokens \(first)..<\(first + count)")
            }
        }
    }

    /// Decode, both arithmetics where the host has them: a token's outputs are bitwise the same alone or in a
    /// batch (one-row and tile paths of each).
    @Test(arguments: [1024, 8192, 8256])
    func resultDoesNotDependOnBatch(cols: Int) throws {
        let (tokens, rows) = (4, 9)
        let (weights, input) = Self.operands(tokens: tokens, rows: rows, cols: cols, seed: 5)
        let packed = try #require(Self.pack(weights, rows: rows, cols: cols))
        typealias Product = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int, ThreadPool?) -> Void
        var products: [Product] = [{ packed.multiply($0, input: $1, tokens: $2, pool: $3) }]
        if bf16PrefillIsVectorized { products.append { packed.multiplyBFloat16($0, input: $1, tokens: $2, pool: $3) } }
        for product in products {
            var all = [Float](repeating: .nan, count: tokens * rows)
            input.withUnsafeBufferPointer { x in
                product(&all, x.baseAddress!, tokens, ThreadPool(threadCount: 2))
                for t in 0..<tokens {
                    var one = [Float](repeating: .nan, count: rows)
                    product(&one, x.baseAddress! + t * cols, 1, nil)
                    #expect(Array(all[(t * rows)..<((t + 1) * rows)]) == one, "token \(t)")
                }
            }
        }
    }

    @Test func declinesWhatItCannotPack() {
        let (weights, _) = Self.operands(tokens: 0, rows: 3, cols: 96, seed: 1)
        #expect(Self.pack(weights, rows: 3, cols: 96) == nil, "rows must be whole chunks of 64")
        // Random bit patterns: the top byte takes all 256 values, far more exceptions than the limit.
        var rng = SplitMix64(seed: 9)
        let noise = (0..<(4 * 128)).map { _ in UInt16(truncatingIfNeeded: rng.next()) }
        #expect(Self.pack(noise, rows: 4, cols: 128) == nil)
    }
}
