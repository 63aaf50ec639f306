// The prefill GEMM against its naive twin, bit for bit (each output one FMA chain in column order), on shapes
// that cross every boundary of its blocking: token blocks (12 on AVX-512, 6 elsewhere) with 4- and 1-token
// tails, 32/16-row micro-panels with a short last one, 128-row panels, 256-column blocks with column tails
// and uneven thread splits; a token's result must not depend on the call's other tokens.
import InternKernels
import Testing

@Suite struct PrefillGEMMTests {
    static let pool3 = ThreadPool(threadCount: 3)

    @Test(arguments: WeightType.allCases, [(1, 1, 1), (3, 17, 7), (5, 33, 37), (13, 70, 256), (25, 129, 300), (12, 32, 520), (37, 300, 64)])
    func matchesItsTwinBitForBit(type: WeightType, shape: (Int, Int, Int)) {
        let (tokens, rows, cols) = shape
        var random = TestRandom(state: UInt64(tokens * 7919 + rows * 31 + cols))
        let weights = encodeWeights(random.floats(rows * cols), as: type)
        let input = random.floats(tokens * cols)
        var threaded = [Float](repeating: .nan, count: tokens * rows)
        var single = threaded, twin = threaded, exact = threaded
        weights.withUnsafeBytes { w in
            matMulPrefill(&threaded, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols, pool: Self.pool3)
            matMulPrefill(&single, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols, pool: nil)
            matMulPrefillReference(&twin, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols)
            matMulReference(&exact, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols)
        }
        for i in 0..<(tokens * rows) where threaded[i].bitPattern != twin[i].bitPattern {
            Issue.record("\(type) \(shape): output (token \(i / rows), row \(i % rows)) is \(threaded[i]), its twin \(twin[i])")
            break
        }
        #expect(threaded.map(\.bitPattern) == single.map(\.bitPattern), "threaded and single-threaded results differ")
        #expect(maxAbsDiff(threaded, exact) < 1e-4 * Float(cols).squareRoot())
    }

    /// Each token's outputs are bitwise the same alone (the 1-token kernel), in a 4-token group or in a full
    /// token block, so chunking a prompt differently does not change its prefill.
    @Test(arguments: WeightType.allCases)
    func tokenResultDoesNotDependOnTokenCount(type: WeightType) {
        let tokens = 29, rows = 45, cols = 333
        var random = TestRandom(state: 77)
        let weights = encodeWeights(random.floats(rows * cols), as: type)
        let input = random.floats(tokens * cols)
        var all = [Float](repeating: .nan, count: tokens * rows)
        weights.withUnsafeBytes { w in
            matMulPrefill(&all, weight: w.baseAddress!, type: type, input: input, tokens: tokens, rows: rows, cols: cols, pool: Self.pool3)
            input.withUnsafeBufferPointer { x in
                for (first, count) in [(0, 1), (5, 1), (28, 1), (3, 4), (13, 5), (17, 12)] {
                    var part = [Float](repeating: .nan, count: count * rows)
                    matMulPrefill(
                        &part, weight: w.baseAddress!, type: type, input: x.baseAddress! + first * cols, tokens: count, rows: rows,
                        cols: cols, pool: nil)
                    #expect(
                        Array(all[(first * rows)..<((first + count) * rows)]).map(\.bitPattern) == part.map(\.bitPattern),
                        "\(type) tokens \(first)..<\(first + count)")
                }
            }
        }
    }

    /// Quantized weights through the GEMM (Q4_K through `matMulQuantized`): close to the exact product of the
    /// de-quantized weights, every token's result independent of the call's other tokens.
    @Test(arguments: BlockQuantization.allCases)
    func quantizedPrefillMatchesReference(type: BlockQuantization) {
        let product: QuantizedProduct = {
            matMulQuantizedPrefill($0, weight: $1, type: $2, input: $3, tokens: $4, rows: $5, cols: $6, pool: $7)
        }
        let (maxDiff, scale) = compareWithReference(
            product, exactProductReference, type: type, tokens: 14, rows: 37, cols: 3 * 256, seeds: (3, 4))
        #expect(maxDiff <= 1e-5 * scale, "\(type): max |diff| \(maxDiff)")
        expectTokenCountInvariance(product, type: type, tokens: 13, rows: 35, cols: 512, seed: 8)
    }
}
