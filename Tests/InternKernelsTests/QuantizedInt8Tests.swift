import InternKernels
import Testing

@Suite struct QuantizedInt8Tests {
    static let product: QuantizedProduct = {
        matMulQuantizedInt8($0, weight: $1, type: $2, input: $3, tokens: $4, rows: $5, cols: $6, pool: $7)
    }
    static let reference: QuantizedProduct = {
        matMulQuantizedInt8Reference($0, weight: $1, type: $2, input: $3, tokens: $4, rows: $5, cols: $6)
        _ = $7
    }
    static let types: [BlockQuantization] = [.q8_0, .q4_0, .q6_K]

    // 96 columns: leftover blocks only; 352: a group of eight blocks and three leftover blocks (Q6_K: one and
    // two super-blocks); row counts that split unevenly.
    @Test(arguments: types, [(1, 7), (3, 13), (5, 9), (2, 4)])
    func matchesReference(type: BlockQuantization, shape: (tokens: Int, rows: Int)) {
        for cols in type == .q6_K ? [256, 512] : [96, 352] {
            let (maxDiff, scale) = compareWithReference(
                Self.product, Self.reference, type: type, tokens: shape.tokens, rows: shape.rows, cols: cols, seeds: (5, 11))
            #expect(maxDiff <= 1e-5 * scale, "\(type) \(shape) cols \(cols): max |diff| \(maxDiff)")
        }
    }

    // Several groups of eight blocks (the Q4_0 kernel reorders each group's activations), with and without
    // leftover blocks: 576 (SmolLM2's width) and 2048 (internlm2-1_8b's).
    @Test(arguments: [BlockQuantization.q8_0, .q4_0], [576, 2048])
    func matchesReferenceOverSeveralGroups(type: BlockQuantization, cols: Int) {
        let (maxDiff, scale) = compareWithReference(Self.product, Self.reference, type: type, tokens: 3, rows: 10, cols: cols, seeds: (7, 3))
        #expect(maxDiff <= 1e-5 * scale, "\(type) cols \(cols): max |diff| \(maxDiff)")
    }

    @Test(arguments: types)
    func closeToExactActivations(type: BlockQuantization) {
        // The activation rounding error stays small against the exact product of the same weights.
        let (maxDiff, scale) = compareWithReference(
            Self.product, exactProductReference, type: type, tokens: 1, rows: 6, cols: 256, seeds: (8, 4))
        #expect(maxDiff <= 0.02 * scale, "\(type): max |diff| \(maxDiff) of \(scale)")
        #expect(maxDiff > 0, "\(type): int8 activations should round")
    }

    @Test(arguments: types)
    func resultDoesNotDependOnTokenCount(type: BlockQuantization) {
        expectTokenCountInvariance(Self.product, type: type, tokens: 5, rows: 9, cols: type == .q6_K ? 512 : 288, seed: 2)
    }

    @Test func activationQuantizationRoundsWithinHalfAStep() {
        var rng = SplitMix64(seed: 12)
        let x = (0..<64).map { i in rng.nextFloat() * Float(i + 1) }
        var q = [Int8](repeating: 0, count: 64)
        var scales = [Float](repeating: 0, count: 2)
        var sums = scales
        quantizeActivations(x, count: 64, q: &q, scales: &scales, sums: &sums)
        for b in 0..<2 {
            let block = x[(b * 32)..<(b * 32 + 32)]
            #expect(scales[b] == block.map(abs).max()! / 127)
            #expect(q[(b * 32)..<(b * 32 + 32)].map { abs(Int($0)) }.max() == 127)
            for i in 0..<32 {
                #expect(abs(Float(q[b * 32 + i]) * scales[b] - x[b * 32 + i]) <= scales[b] / 2 * 1.0001)
            }
            #expect(sums[b] == scales[b] * Float(q[(b * 32)..<(b * 32 + 32)].reduce(0) { $0 + Int($1) }))
        }
    }
}
