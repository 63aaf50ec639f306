// RMSNorm over one vector: out = x / sqrt(mean(x²) + eps) * weight, as HF `InternLM2RMSNorm` computes it
// in f32. Strategy: two SIMD8 passes (sum of squares, then scale), single-threaded: a vector of a few
// thousand floats is far below the cost of waking the pool. n = elements.
import Foundation

/// out (n) = RMSNorm(x (n)) * weight (n). `out` may alias `x`.
public func rmsNorm(
    _ out: UnsafeMutablePointer<Float>,  // (n)
    input x: UnsafePointer<Float>,  // (n)
    weight: UnsafePointer<Float>,  // (n)
    count n: Int, eps: Float
) {
    let n8 = n & ~7
    var acc = SIMD8<Float>()
    var i = 0
    while i < n8 {
        let v = load8(x, i)
        acc += v * v
        i += 8
    }
    var sum = acc.sum()
    while i < n {
        sum += x[i] * x[i]
        i += 1
    }
    let scale = 1 / (sum / Float(n) + eps).squareRoot()
    i = 0
    while i < n8 {
        store8(out, i, load8(x, i) * scale * load8(weight, i))
        i += 8
    }
    while i < n {
        out[i] = x[i] * scale * weight[i]
        i += 1
    }
}

/// The reference for `rmsNorm`, in Double.
public func rmsNormReference(
    _ out: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    count n: Int, eps: Float
) {
    var sum = 0.0
    for i in 0..<n { sum += Double(x[i]) * Double(x[i]) }
    let scale = 1 / (sum / Double(n) + Double(eps)).squareRoot()
    for i in 0..<n { out[i] = Float(Double(x[i]) * scale * Double(weight[i])) }
}
