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
