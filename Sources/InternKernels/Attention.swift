// Causal scaled dot-product attention of new query tokens over a KV cache, with grouped-query heads:
// query head h reads KV head h / (H / KVH). Query t sits at absolute position p0 + t and attends to
// cache positions 0...p0+t (the new tokens' keys and values are already written to the cache).
// Strategy: threaded over (token, head) pairs, each worker with its own row of score scratch; per pair,
// SIMD8 dot products for scores, a max-subtracted softmax, then a SIMD8 weighted sum of value rows.
// Names: T = new tokens, H = query heads, KVH = KV heads, D = head dim, P = cache positions used.

import Foundation

/// out (T, H, D) = softmax(q kᵀ / sqrt(D), causal) v over the cached keys and values.
public func attention(
    _ out: UnsafeMutablePointer<Float>,  // (T, H, D)
    query: UnsafePointer<Float>,  // (T, H, D)
    keys: UnsafePointer<Float>,  // (positions, KVH, D), positions ≥ p0 + T
    values: UnsafePointer<Float>,  // (positions, KVH, D)
    tokens T: Int, startPosition p0: Int, heads H: Int, kvHeads KVH: Int, headDim D: Int,
    scratch: UnsafeMutablePointer<Float>,  // (pool threads, p0 + T)
    pool: ThreadPool?
) {
    let group = H / KVH
    let kvStride = KVH * D
    let scale = 1 / Float(D).squareRoot()
    let scoresCapacity = p0 + T
    let D8 = D & ~7
    let body = { (range: Range<Int>, worker: Int) in
        let scores = scratch + worker * scoresCapacity
        for job in range {
            let t = job / H, h = job % H
            let kvh = h / group
            let q = query + (t * H + h) * D
            let o = out + (t * H + h) * D
            let visible = p0 + t + 1
            var maximum = -Float.infinity
            for p in 0..<visible {
                let k = keys + p * kvStride + kvh * D
                var acc = SIMD8<Float>()
                var d = 0
                while d < D8 {
                    acc += load8(q, d) * load8(k, d)
                    d += 8
                }
                var s = acc.sum()
                while d < D {
                    s += q[d] * k[d]
                    d += 1
                }
                s *= scale
                scores[p] = s
                if s > maximum { maximum = s }
            }
            softmax(scores, count: visible)
            for d in 0..<D { o[d] = 0 }
            for p in 0..<visible {
                let v = values + p * kvStride + kvh * D
                let w = SIMD8<Float>(repeating: scores[p])
                var d = 0
                while d < D8 {
                    store8(o, d, load8(o, d) + w * load8(v, d))
                    d += 8
                }
                while d < D {
                    o[d] += scores[p] * v[d]
                    d += 1
                }
            }
        }
    }
    if let pool {
        pool.parallelFor(T * H, body)
    } else {
        body(0..<(T * H), 0)
    }
}

/// The reference for `attention`: explicit loops in Double, its own score buffer.
public func attentionReference(
    _ out: UnsafeMutablePointer<Float>, query: UnsafePointer<Float>,
    keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
    tokens T: Int, startPosition p0: Int, heads H: Int, kvHeads KVH: Int, headDim D: Int
) {
    let group = H / KVH
    for t in 0..<T {
        for h in 0..<H {
            let kvh = h / group
            let visible = p0 + t + 1
            var scores = [Double](repeating: 0, count: visible)
            for p in 0..<visible {
                var s = 0.0
                for d in 0..<D {
                    s += Double(query[(t * H + h) * D + d]) * Double(keys[(p * KVH + kvh) * D + d])
                }
                scores[p] = s / Double(D).squareRoot()
            }
            let m = scores.max()!
            let e = scores.map { exp($0 - m) }
            let z = e.reduce(0, +)
            for d in 0..<D {
                var acc = 0.0
                for p in 0..<visible { acc += e[p] / z * Double(values[(p * KVH + kvh) * D + d]) }
                out[(t * H + h) * D + d] = Float(acc)
            }
        }
    }
}
