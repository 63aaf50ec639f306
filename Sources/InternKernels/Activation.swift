// The SwiGLU gate: gate = silu(gate) * up, with silu(x) = x / (1 + e^-x), as HF `InternLM2MLP`
// (`w2(act_fn(w1(x)) * w3(x))`). Strategy: one SIMD8 pass with Softmax.swift's `exp8` (libm's scalar expf
// took 3–5% of a small model's prefill, on one core), single-threaded per call; the caller covers all
// tokens. n = elements.
import Foundation

/// gate (n) = silu(gate) * up (n).
public func siluMul(_ gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
    let n8 = n & ~7
    var i = 0
    while i < n8 {
        let g = load8(gate, i)
        // e^−|g| ≤ 1 stays in `exp8`'s domain: σ(g) = 1 / (1 + e^−g) for g ≥ 0, e^g / (1 + e^g) below.
        let e = exp8(unsafeBitCast(unsafeBitCast(g, to: SIMD8<UInt32>.self) | 0x8000_0000, to: SIMD8<Float>.self))
        var sigmoid = 1 / (1 + e)
        sigmoid.replace(with: e * sigmoid, where: g .< 0)
        store8(gate, i, g * sigmoid * load8(up, i))
        i &+= 8
    }
    while i < n {
        let g = gate[i]
        gate[i] = g / (1 + expf(-g)) * up[i]
        i &+= 1
    }
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
