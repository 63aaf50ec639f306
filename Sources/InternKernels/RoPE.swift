// Rotary position embedding in the HF `rotate_half` convention used by InternLM2 and Llama: a head
// vector of dimension D is split into halves (x1 = x[0..<D/2], x2 = x[D/2..<D]) and element i of each half
// is rotated by angle position * invFreq[i]: out1 = x1 cos - x2 sin, out2 = x2 cos + x1 sin.
// (The GPT-J/llama.cpp "interleaved" pairing (x[2i], x[2i+1]) is a different layout and is not used.)
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
