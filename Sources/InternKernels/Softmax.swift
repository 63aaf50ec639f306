// Softmax over one vector in place, max-subtracted so large logits cannot overflow exp. Strategy:
// scalar exp (Foundation's expf) with SIMD8 max and scale passes; single-threaded (one row of attention
// scores or one vocabulary of logits per call). n = elements.
import Foundation

/// x (n) = softmax(x). Does nothing for n = 0.
public func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    guard n > 0 else { return }
    var maximum = -Float.infinity
    for i in 0..<n where x[i] > maximum { maximum = x[i] }
    var sum: Float = 0
    for i in 0..<n {
        let e = expf(x[i] - maximum)
        x[i] = e
        sum += e
    }
    let inverse = 1 / sum
    let n8 = n & ~7
    var i = 0
    while i < n8 {
        store8(x, i, load8(x, i) * inverse)
        i += 8
    }
    while i < n {
        x[i] *= inverse
        i += 1
    }
}

/// The reference for `softmax`, in Double.
public func softmaxReference(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    guard n > 0 else { return }
    var maximum = -Double.infinity
    for i in 0..<n { maximum = max(maximum, Double(x[i])) }
    var values = [Double](repeating: 0, count: n)
    for i in 0..<n { values[i] = exp(Double(x[i]) - maximum) }
    let sum = values.reduce(0, +)
    for i in 0..<n { x[i] = Float(values[i] / sum) }
}
