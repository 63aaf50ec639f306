// The SwiGLU gate: gate = silu(gate) * up, with silu(x) = x / (1 + e^-x), as HF `InternLM2MLP`
// (`w2(act_fn(w1(x)) * w3(x))`). Strategy: one scalar pass (expf dominates), single-threaded per
// call; the caller covers all tokens. n = elements.
import Foundation

/// gate (n) = silu(gate) * up (n).
public func siluMul(_ gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n {
        let g = gate[i]
        gate[i] = g / (1 + expf(-g)) * up[i]
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
