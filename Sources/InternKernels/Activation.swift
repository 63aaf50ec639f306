// The SwiGLU gate: gate = silu(gate) * up, with silu(x) = x / (1 + e^-x), as HF `InternLM2MLP`
// (`w2(act_fn(w1(x)) * w3(x))`). Strategy: one SIMD8 pass with Softmax.swift's `exp8` (libm's scalar expf
// took 3–5% of a small model's prefill, on one core), single-threaded per call; the caller covers all
// tokens. n = elements.
import Foundation

/// gate (n) = silu(gate) * up (n). Every element takes the same arithmetic (the tail too, in a zero-padded
/// vector), so a row's result does not depend on where it starts in a batch.
public func siluMul(_ gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
    let n8 = n & ~7
    var i = 0
    while i < n8 {
        store8(gate, i, siluTimes(load8(gate, i), load8(up, i)))
        i &+= 8
    }
    guard i < n else { return }
    var g = SIMD8<Float>(), u = SIMD8<Float>()
    for j in 0..<(n &- i) {
        g[j] = gate[i &+ j]
        u[j] = up[i &+ j]
    }
    let tail = siluTimes(g, u)
    for j in 0..<(n &- i) { gate[i &+ j] = tail[j] }
}

/// silu(g) · u lane by lane. e^−|g| ≤ 1 stays in `exp8`'s domain: σ(g) = 1 / (1 + e^−g) for g ≥ 0, e^g / (1 + e^g)
/// below.
@inline(__always)
private func siluTimes(_ g: SIMD8<Float>, _ u: SIMD8<Float>) -> SIMD8<Float> {
    let e = exp8(unsafeBitCast(unsafeBitCast(g, to: SIMD8<UInt32>.self) | 0x8000_0000, to: SIMD8<Float>.self))
    var sigmoid = 1 / (1 + e)
    sigmoid.replace(with: e * sigmoid, where: g .< 0)
    return g * sigmoid * u
}

/// The reference for `siluMul`, in Double.
public func siluMulReference(_ gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n {
        let g = Double(gate[i])
        gate[i] = Float(g * (1 / (1 + exp(-g))) * Double(up[i]))
    }
}

/// x (n) += y (n): the residual connection.
public func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) {
    let n8 = n & ~7
    var i = 0
    while i < n8 {
        store8(x, i, load8(x, i) + load8(y, i))
        i += 8
    }
    while i < n {
        x[i] += y[i]
        i += 1
    }
}
