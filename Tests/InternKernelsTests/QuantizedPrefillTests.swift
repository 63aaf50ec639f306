// The repacked VNNI prefill kernel against its scalar twin (bit for bit), against the exact product of the
// de-quantized weights (within the activations' rounding), and across token counts and thread splits.
import InternKernels
import Testing

@Suite struct QuantizedPrefillTests {
    static let product: QuantizedProduct = {
        matMulQuantizedInt8Prefill($0, weight: $1, type: $2, input: $3, tokens: $4, rows: $5, cols: $6, pool: $7)
    }
    static let reference: QuantizedProduct = {
        matMulQuantizedInt8PrefillReference($0, weight: $1, type: $2, input: $3, tokens: $4, rows: $5, cols: $6)
        _ = $7
    }

    // Token counts around the 4-token tile; row counts below, at and past the 16-row groups and 32-row pairs
    // (masked stores, repeated rows, uneven thread splits); one block, a few, and internlm2-1_8b's width.
    @Test(arguments: [BlockQuantization.q8_0, .q4_0], [(1, 7), (3, 16), (4, 33), (5, 64), (9, 100)])
    func matchesReferenceBitForBit(type: BlockQuantization, shape: (tokens: Int, rows: Int)) {
        for cols in [32, 96, 2048] {
            let (maxDiff, _) = compareWithReference(
                Self.product, Self.reference, type: type, tokens: shape.tokens, rows: shape.rows, cols: cols, seeds: (3, 17))
            #expect(maxDiff == 0, "\(type) \(shape) cols \(cols): max |diff| \(maxDiff)")
        }
    }

    // Several panels: 600 rows of 2048 columns stage in more than one panel per thread.
    @Test(arguments: [BlockQuantization.q8_0, .q4_0])
    func matchesReferenceOverSeveralPanels(type: BlockQuantization) {
        let (maxDiff, _) = compareWithReference(Self.product, Self.reference, type: type, tokens: 6, rows: 600, cols: 2048, seeds: (9, 2))
        #expect(maxDiff == 0, "\(type): max |diff| \(maxDiff)")
    }

    @Test(arguments: [BlockQuantization.q8_0, .q4_0])
    func closeToExactActivations(type: BlockQuantization) {
        let (maxDiff, scale) = compareWithReference(
            Self.product, exactProductReference, type: type, tokens: 5, rows: 40, cols: 512, seeds: (8, 4))
        #expect(maxDiff <= 0.02 * scale, "\(type): max |diff| \(maxDiff) of \(scale)")
        #expect(maxDiff > 0, "\(type): int8 activations should round")
    }

    @Test(arguments: [BlockQuantization.q8_0, .q4_0])
    func resultDoesNotDependOnTokenCount(type: BlockQuantization) {
        expectTokenCountInvariance(Self.product, type: type, tokens: 7, rows: 45, cols: 288, seed: 5)
    }

    @Test func rejectsUnsupportedTypes() {
        #expect(!supportsInt8Prefill(.q6_K) && !supportsInt8Prefill(.q4_1) && supportsInt8Prefill(.q8_0))
    }
}
