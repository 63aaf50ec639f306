// Quantized matrix products against their naive twin, on random blocks with every bit pattern, shapes
// with uneven thread splits, and several token counts (the block layouts themselves are checked against
// gguf-py in InternCoreTests/QuantizedBlocksTests).
import InternKernels
import Testing

/// Random blocks of `type`: random bytes, with the f16 scales set to finite, moderate values.
func randomBlocks(_ type: BlockQuantization, rows: Int, cols: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    var bytes = (0..<(rows * type.rowBytes(cols))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    let scaleOffsets: [Int] =
        switch type {
        case .q8_0, .q4_0: [0]
        case .q4_1, .q4_K: [0, 2]
        case .q6_K: [208]
        }
    for block in 0..<(bytes.count / type.blockBytes) {
        for o in scaleOffsets {
            let scale = Float16(Float(rng.next() % 1000 + 1) / 20000).bitPattern
            bytes[block * type.blockBytes + o] = UInt8(scale & 0xFF)
            bytes[block * type.blockBytes + o + 1] = UInt8(scale >> 8)
        }
    }
    return bytes
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}

/// A quantized product under test: (out, weight, type, input, tokens, rows, cols, pool).
typealias QuantizedProduct =
    @Sendable (
        UnsafeMutablePointer<Float>, UnsafeRawPointer, BlockQuantization, UnsafePointer<Float>, Int, Int, Int, ThreadPool?
    ) -> Void

/// Runs `kernel` (threaded over 3 workers) and `reference` on random blocks and inputs; returns the largest
/// |difference| and the largest |reference output| + 1.
func compareWithReference(
    _ kernel: QuantizedProduct, _ reference: QuantizedProduct, type: BlockQuantization, tokens: Int, rows: Int, cols: Int,
    seeds: (weights: UInt64, input: UInt64)
) -> (maxDiff: Float, scale: Float) {
    let weights = randomBlocks(type, rows: rows, cols: cols, seed: seeds.weights)
    var rng = SplitMix64(seed: seeds.input)
    let input = (0..<(tokens * cols)).map { _ in rng.nextFloat() }
    var got = [Float](repeating: .nan, count: tokens * rows)
    var want = got
    let pool = ThreadPool(threadCount: 3)
    weights.withUnsafeBytes { w in
        kernel(&got, w.baseAddress!, type, input, tokens, rows, cols, pool)
        reference(&want, w.baseAddress!, type, input, tokens, rows, cols, nil)
    }
    return (zip(got, want).map { abs($0 - $1) }.max()!, want.map(abs).max()! + 1)
}

/// Expects every token's outputs from one threaded call over all tokens to equal bitwise those of the token
/// alone: kernels must not change a token's arithmetic with the batch.
func expectTokenCountInvariance(_ kernel: QuantizedProduct, type: BlockQuantization, tokens: Int, rows: Int, cols: Int, seed: UInt64) {
    let weights = randomBlocks(type, rows: rows, cols: cols, seed: seed)
    var rng = SplitMix64(seed: seed &+ 1)
    let input = (0..<(tokens * cols)).map { _ in rng.nextFloat() }
    var all = [Float](repeating: .nan, count: tokens * rows)
    let pool = ThreadPool(threadCount: 2)
    weights.withUnsafeBytes { w in
        kernel(&all, w.baseAddress!, type, input, tokens, rows, cols, pool)
        input.withUnsafeBufferPointer { x in
            for t in 0..<tokens {
                var one = [Float](repeating: .nan, count: rows)
                kernel(&one, w.baseAddress!, type, x.baseAddress! + t * cols, 1, rows, cols, nil)
                #expect(Array(all[(t * rows)..<((t + 1) * rows)]) == one, "\(type) token \(t)")
            }
        }
    }
}

let exactProduct: QuantizedProduct = {
    matMulQuantized($0, weight: $1, type: $2, input: $3, tokens: $4, rows: $5, cols: $6, pool: $7)
}
let exactProductReference: QuantizedProduct = {
    matMulQuantizedReference($0, weight: $1, type: $2, input: $3, tokens: $4, rows: $5, cols: $6)
    _ = $7
}

@Suite struct QuantizedMatMulTests {
    @Test(arguments: BlockQuantization.allCases, [(1, 7), (3, 13), (5, 4), (2, 9)])
    func matchesReference(type: BlockQuantization, shape: (tokens: Int, rows: Int)) {
        let (maxDiff, scale) = compareWithReference(
            exactProduct, exactProductReference, type: type, tokens: shape.tokens, rows: shape.rows, cols: 2 * 256, seeds: (42, 7))
        #expect(maxDiff <= 1e-5 * scale, "\(type) \(shape): max |diff| \(maxDiff)")
    }

    @Test(arguments: BlockQuantization.allCases)
    func dequantizeMatchesReferenceElements(type: BlockQuantization) {
        let cols = 512
        let weights = randomBlocks(type, rows: 2, cols: cols, seed: 3)
        var got = [Float](repeating: .nan, count: 2 * cols)
        weights.withUnsafeBytes { w in
            dequantize(&got, from: w.baseAddress!, type: type, offset: 0, count: 2 * cols)
            for i in 0..<(2 * cols) {
                let want = quantizedElementReference(w.baseAddress!, type: type, index: i)
                if got[i] != want {
                    Issue.record("\(type) weight \(i): \(got[i]) vs \(want)")
                    return
                }
            }
        }
    }

    @Test(arguments: BlockQuantization.allCases)
    func resultDoesNotDependOnTokenCount(type: BlockQuantization) {
        // A row's output must be bit-identical whether a token is processed alone or with others: rows 9
        // (two 4-row tiles and a tail row), tokens 5 (two token pairs and a tail token), threaded.
        expectTokenCountInvariance(exactProduct, type: type, tokens: 5, rows: 9, cols: 256, seed: 9)
    }
}
