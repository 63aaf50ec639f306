// Rotary position embedding in the HF `rotate_half` convention used by InternLM2 and Llama: a head
// vector of dimension D is split into halves (x1 = x[0..<D/2], x2 = x[D/2..<D]) and element i of each half
// is rotated by angle position * invFreq[i]: out1 = x1 cos - x2 sin, out2 = x2 cos + x1 sin.
// GGUF files of llama.cpp's `llama`/`internlm2` architectures store Q and K rows permuted so that the
// adjacent pairs (x[2i], x[2i+1]) are rotated instead (llama.cpp's LLAMA_ROPE_TYPE_NORM); for those,
// `applyRotaryEmbeddingAdjacentPairs` rotates pair i by the same angle.
// Strategy: cos/sin for one position are computed once by the caller (`ropeCosSin`) and applied to all
// heads of that token; SIMD8 over i. D = head dim, H = heads.
import Foundation

/// The inverse frequencies 1 / base^(2i/D), i in 0..<D/2, rounded to f32 as PyTorch computes them.
public func ropeInverseFrequencies(base: Double, headDim: Int) -> [Float] {
    (0..<headDim / 2).map { i in Float(1 / pow(base, Double(2 * i) / Double(headDim))) }
}

/// cos and sin (D/2 each) of `position * invFreq[i]`, with the angle in f32 as PyTorch forms it.
public func ropeCosSin(
    position: Float, inverseFrequencies: UnsafePointer<Float>,  // (D/2)
    cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>,  // (D/2) each
    halfDim: Int
) {
    for i in 0..<halfDim {
        let angle = position * inverseFrequencies[i]
        cos[i] = Foundation.cos(angle)
        sin[i] = Foundation.sin(angle)
    }
}

/// Rotates `heads` head vectors of `headDim` floats in place.
public func applyRotaryEmbedding(
    _ x: UnsafeMutablePointer<Float>,  // (H, D)
    heads: Int, headDim: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>  // (D/2) each
) {
    let half = headDim / 2
    let half8 = half & ~7
    for h in 0..<heads {
        let x1 = x + h * headDim, x2 = x1 + half
        var i = 0
        while i < half8 {
            let a = load8(x1, i), b = load8(x2, i), c = load8(cos, i), s = load8(sin, i)
            store8(x1, i, a * c - b * s)
            store8(x2, i, b * c + a * s)
            i += 8
        }
        while i < half {
            let a = x1[i], b = x2[i]
            x1[i] = a * cos[i] - b * sin[i]
            x2[i] = b * cos[i] + a * sin[i]
            i += 1
        }
    }
}

/// The reference for `applyRotaryEmbedding`, written as HF does: x * cat(cos, cos) + rotate_half(x) * cat(sin, sin),
/// with rotate_half(x) = cat(-x2, x1).
public func applyRotaryEmbeddingReference(
    _ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
) {
    let half = headDim / 2
    for h in 0..<heads {
        let v = Array(UnsafeBufferPointer(start: x + h * headDim, count: headDim))
        let rotated = v[half...].map { -$0 } + v[..<half]
        for d in 0..<headDim {
            let c = cos[d % half], s = sin[d % half]
            x[h * headDim + d] = v[d] * c + rotated[d] * s
        }
    }
}

/// Rotates head vectors whose rotation pairs are adjacent, (x[2i], x[2i+1]) by angle i (GGUF `llama` layout).
public func applyRotaryEmbeddingAdjacentPairs(
    _ x: UnsafeMutablePointer<Float>,  // (H, D)
    heads: Int, headDim: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>  // (D/2) each
) {
    let half = headDim / 2
    for h in 0..<heads {
        let v = x + h * headDim
        for i in 0..<half {
            let a = v[2 * i], b = v[2 * i + 1]
            v[2 * i] = a * cos[i] - b * sin[i]
            v[2 * i + 1] = a * sin[i] + b * cos[i]
        }
    }
}

/// The reference for `applyRotaryEmbeddingAdjacentPairs`: de-interleave, rotate as HF does, interleave back.
public func applyRotaryEmbeddingAdjacentPairsReference(
    _ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
) {
    let half = headDim / 2
    for h in 0..<heads {
        let v = x + h * headDim
        var halves = [Float](repeating: 0, count: headDim)
        for i in 0..<half {
            halves[i] = v[2 * i]
            halves[half + i] = v[2 * i + 1]
        }
        halves.withUnsafeMutableBufferPointer { applyRotaryEmbeddingReference($0.baseAddress!, heads: 1, headDim: headDim, cos: cos, sin: sin) }
        for i in 0..<half {
            v[2 * i] = halves[i]
            v[2 * i + 1] = halves[half + i]
        }
    }
}
