// The bf16-activation kernels for bf16 matrices read in place (AVX-512 BF16 where the CPU has it), prefill and
// decode, against their naive twin, against the exact f32 product, and across token counts and thread splits.
import InternKernels
import Testing

@Suite struct BFloat16PrefillTests {
    /// Random bf16 weights (R, C) and f32 activations (T, C).
    static func operands(tokens: Int, rows: Int, cols: Int, seed: UInt64) -> (weights: [UInt16], input: [Float]) {
        var rng = SplitMix64(seed: seed)
        let weights = (0..<(rows * cols)).map { _ in UInt16(truncatingIfNeeded: rng.nextFloat().bitPattern >> 16) }
        return (weights, (0..<(tokens * cols)).map { _ in rng.nextFloat() })
    }

    /// (kernel, reference, exact f32 product) on the same operands; the kernel threaded over 3 workers.
    static func run(tokens: Int, rows: Int, cols: Int, seed: UInt64) -> (got: [Float], want: [Float], exact: [Float]) {
        let (weights, input) = operands(tokens: tokens, rows: rows, cols: cols, seed: seed)
        var got = [Float](repeating: .nan, count: tokens * rows), want = got, exact = got
        weights.withUnsafeBytes { w in
            matMulBF16Prefill(&got, weight: w.baseAddress!, input: input, tokens: tokens, rows: rows, cols: cols, pool: ThreadPool(threadCount: 3))
            matMulBF16PrefillReference(&want, weight: w.baseAddress!, input: input, tokens: tokens, rows: rows, cols: cols)
            matMul(&exact, weight: w.baseAddress!, type: .bf16, input: input, tokens: tokens, rows: rows, cols: cols, pool: nil)
        }
        return (got, want, exact)
    }

    // Token counts around the 12-token block and its 4- and 1-token tails, rows around the 32-row micro-panels,
    // uneven thread splits, columns within one and across several 512-column blocks, an odd count among them.
    @Test(arguments: [(1, 7), (4, 12), (5, 13), (9, 50), (13, 70)], [32, 40, 1001, 2048])
    func matchesReference(shape: (tokens: Int, rows: Int), cols: Int) {
        let (got, want, _) = Self.run(tokens: shape.tokens, rows: shape.rows, cols: cols, seed: 21)
        let scale = want.map(abs).max()! + 1
        let maxDiff = zip(got, want).map { abs($0 - $1) }.max()!
        #expect(maxDiff <= 1e-5 * scale, "\(shape) cols \(cols): max |diff| \(maxDiff)")
    }

    @Test func closeToExactActivations() {
        let (got, _, exact) = Self.run(tokens: 5, rows: 30, cols: 512, seed: 4)
        let scale = exact.map(abs).max()! + 1
        let maxDiff = zip(got, exact).map { abs($0 - $1) }.max()!
        #expect(maxDiff <= 0.01 * scale, "max |diff| \(maxDiff) of \(scale)")
        #expect(maxDiff > 0, "bf16 activations should round")
    }

    @Test func resultDoesNotDependOnTokenCount() {
        let (tokens, rows, cols) = (7, 27, 160)
        let (weights, input) = Self.operands(tokens: tokens, rows: rows, cols: cols, seed: 8)
        var all = [Float](repeating: .nan, count: tokens * rows)
        weights.withUnsafeBytes { w in
            matMulBF16Prefill(&all, weight: w.baseAddress!, input: input, tokens: tokens, rows: rows, cols: cols, pool: ThreadPool(threadCount: 2))
            input.withUnsafeBufferPointer { x in
                for t in 0..<tokens {
                    var one = [Float](repeating: .nan, count: rows)
                    matMulBF16Prefill(&one, weight: w.baseAddress!, input: x.baseAddress! + t * cols, tokens: 1, rows: rows, cols: cols, pool: nil)
                    #expect(Array(all[(t * rows)..<((t + 1) * rows)]) == one, "token \(t)")
                }
            }
        }
    }

    // Decode (`matMulBF16Decode`): columns with and without a tail past the last whole 64, uneven splits over 3
    // workers, a few tokens; a token's result is bitwise the same alone.
    @Test(arguments: [(1, 7), (3, 13), (2, 50)], [32, 40, 1001, 2048])
    func decodeMatchesReference(shape: (tokens: Int, rows: Int), cols: Int) {
        let (tokens, rows) = shape
        let (weights, input) = Self.operands(tokens: tokens, rows: rows, cols: cols, seed: 27)
        var got = [Float](repeating: .nan, count: tokens * rows), want = got, exact = got
        weights.withUnsafeBytes { w in
            matMulBF16Decode(&got, weight: w.baseAddress!, input: input, tokens: tokens, rows: rows, cols: cols, pool: ThreadPool(threadCount: 3))
            matMulBF16PrefillReference(&want, weight: w.baseAddress!, input: input, tokens: tokens, rows: rows, cols: cols)
            matMul(&exact, weight: w.baseAddress!, type: .bf16, input: input, tokens: tokens, rows: rows, cols: cols, pool: nil)
            input.withUnsafeBufferPointer { x in
                for t in 0..<tokens {
                    var one = [Float](repeating: .nan, count: rows)
                    matMulBF16Decode(&one, weight: w.baseAddress!, input: x.baseAddress! + t * cols, tokens: 1, rows: rows, cols: cols, pool: nil)
                    #expect(Array(got[(t * rows)..<((t + 1) * rows)]) == one, "token \(t)")
                }
            }
        }
        let scale = want.map(abs).max()! + 1
        let maxDiff = zip(got, want).map { abs($0 - $1) }.max()!
        #expect(maxDiff <= 1e-5 * scale, "\(shape) cols \(cols): max |diff| \(maxDiff)")
        if cols >= 1001 { #expect(got != exact, "the activations should be rounded") }
    }

    /// The packed 12-bit copy of a bf16 matrix gives the same results to the bit (weights decoded to bf16 in
    /// column order, exceptions included).
    @Test(.enabled(if: bf16PrefillIsVectorized), arguments: [640, 1088])
    func packedMatrixMatchesUnpacked(cols: Int) throws {
        let (tokens, rows) = (14, 45)
        let (weights, input) = PackedBFloat16Tests.operands(tokens: tokens, rows: rows, cols: cols, seed: 31)
        let packed = try #require(PackedBFloat16Tests.pack(weights, rows: rows, cols: cols))
        #expect(packed.exceptionCount > 0, "exceptions should take part")
        var got = [Float](repeating: .nan, count: tokens * rows), want = got
        packed.multiplyPrefillBFloat16(&got, input: input, tokens: tokens, pool: ThreadPool(threadCount: 2))
        weights.withUnsafeBytes { w in
            matMulBF16Prefill(&want, weight: w.baseAddress!, input: input, tokens: tokens, rows: rows, cols: cols, pool: nil)
        }
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    @Test func roundsToNearestEven() {
        let step: Float = 1.0 / 128  // bf16's spacing in [1, 2)
        #expect(roundedToBFloat16(1 + step / 2) == 1)  // a tie: to the even mantissa, downward
        #expect(roundedToBFloat16(1 + 1.5 * step) == 1 + 2 * step)  // a tie: to the even mantissa, upward
        #expect(roundedToBFloat16(1 + step / 2 + step / 256) == 1 + step)
        #expect(roundedToBFloat16(1 + step / 2 - step / 256) == 1)
        #expect(roundedToBFloat16(-2.5) == -2.5)
        #expect(roundedToBFloat16(.nan).isNaN)
    }
}
