import InternKernels
import Testing

@Suite struct QuantizedInt16Tests {
    static let product: QuantizedProduct = {
        matMulQuantizedInt16($0, weight: $1, type: $2, input: $3, tokens: $4, rows: $5, cols: $6, pool: $7)
    }
    static let reference: QuantizedProduct = {
        matMulQuantizedInt16Reference($0, weight: $1, type: $2, input: $3, tokens: $4, rows: $5, cols: $6)
        _ = $7
    }
    static let types: [BlockQuantization] = [.q8_0, .q4_0, .q4_1, .q6_K]

    // 352 columns: a group of eight blocks and three leftover blocks; row counts that split unevenly.
    @Test(arguments: types, [(1, 7), (3, 13), (5, 9), (4, 4), (9, 6)])
    func matchesReference(type: BlockQuantization, shape: (tokens: Int, rows: Int)) {
        let (maxDiff, scale) = compareWithReference(
            Self.product, Self.reference, type: type, tokens: shape.tokens, rows: shape.rows, cols: type.blockSize == 256 ? 512 : 352, seeds: (5, 11))
        #expect(maxDiff <= 1e-5 * scale, "\(type) \(shape): max |diff| \(maxDiff)")
    }

    // Several groups of eight blocks (the 512-bit kernel folds each group's four block pairs at once), with
    // and without leftover blocks: 576 (SmolLM2's width: two groups + two blocks) and 1024 columns.
    @Test(arguments: [BlockQuantization.q8_0, .q4_0, .q4_1], [576, 1024])
    func matchesReferenceOverSeveralGroups(type: BlockQuantization, cols: Int) {
        let (maxDiff, scale) = compareWithReference(Self.product, Self.reference, type: type, tokens: 3, rows: 10, cols: cols, seeds: (7, 3))
        #expect(maxDiff <= 1e-5 * scale, "\(type) cols \(cols): max |diff| \(maxDiff)")
    }

    @Test(arguments: types)
    func closeToExactActivations(type: BlockQuantization) {
        // 16-bit activations: far below the 8-bit path's error (bound 0.02 there), still not exact.
        let (maxDiff, scale) = compareWithReference(
            Self.product, exactProductReference, type: type, tokens: 1, rows: 6, cols: 256, seeds: (8, 4))
        #expect(maxDiff <= 2e-4 * scale, "\(type): max |diff| \(maxDiff) of \(scale)")
    }

    @Test(arguments: types)
    func resultDoesNotDependOnTokenCount(type: BlockQuantization) {
        expectTokenCountInvariance(Self.product, type: type, tokens: 7, rows: 9, cols: 256, seed: 2)
    }

    @Test func activationQuantizationRoundsWithinHalfAStep() {
        var rng = SplitMix64(seed: 12)
        var x = (0..<96).map { i in rng.nextFloat() * Float(i + 1) }
        for i in 64..<96 { x[i] = 0 }  // an all-zero block: scale 0, no division by zero
        var q = [Int16](repeating: 0, count: 96)
        var scales = [Float](repeating: .nan, count: 3)
        var sums = scales
        quantizeActivations16(x, count: 96, q: &q, scales: &scales, sums: &sums)
        for b in 0..<2 {
            let block = x[(b * 32)..<(b * 32 + 32)]
            #expect(scales[b] == block.map(abs).max()! / 32767)
            #expect(q[(b * 32)..<(b * 32 + 32)].map { abs(Int($0)) }.max() == 32767)
            for i in 0..<32 {
                #expect(abs(Float(q[b * 32 + i]) * scales[b] - x[b * 32 + i]) <= scales[b] / 2 * 1.0001)
            }
            #expect(sums[b] == scales[b] * Float(q[(b * 32)..<(b * 32 + 32)].reduce(0) { $0 + Int($1) }))
        }
        #expect(scales[2] == 0 && sums[2] == 0 && q[64..<96].allSatisfy { $0 == 0 })
    }
}
