// Causal scaled dot-product attention of new query tokens over a KV cache, with grouped-query heads:
// query head h reads KV head h / (H / KVH). Query t sits at absolute position p0 + t and attends to
// cache positions 0...p0+t (the new tokens' keys and values are already written to the cache).
// Strategy: threaded over (token, head) pairs, each worker with its own row of score scratch; per pair,
// SIMD8 dot products for scores (two FMA chains), a max-subtracted softmax, then the weighted sum of
// value rows with 32 output lanes kept in registers over all positions (no store per position).
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
    let D8 = D & ~7, D32 = D & ~31
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
                let k = keys + (p &* kvStride &+ kvh &* D)
                // Two FMA chains: the dot product is latency-bound with one (D = 64 is only 8 steps).
                var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
                var d = 0
                while d &+ 16 <= D8 {
                    a0 = madd(a0, load8(q, d), load8(k, d))
                    a1 = madd(a1, load8(q, d &+ 8), load8(k, d &+ 8))
                    d &+= 16
                }
                if d < D8 {
                    a0 = madd(a0, load8(q, d), load8(k, d))
                    d &+= 8
                }
                var s = (a0 + a1).sum()
                while d < D {
                    s += q[d] * k[d]
                    d &+= 1
                }
                s *= scale
                scores[p] = s
                if s > maximum { maximum = s }
            }
            softmax(scores, count: visible)
            // Weighted sum of value rows, 32 output lanes at a time held in registers across positions.
            var d = 0
            while d < D32 {
                var o0 = SIMD8<Float>(), o1 = o0, o2 = o0, o3 = o0
                for p in 0..<visible {
                    let v = values + (p &* kvStride &+ kvh &* D &+ d)
                    let w = SIMD8<Float>(repeating: scores[p])
                    o0 = madd(o0, w, load8(v, 0))
                    o1 = madd(o1, w, load8(v, 8))
                    o2 = madd(o2, w, load8(v, 16))
                    o3 = madd(o3, w, load8(v, 24))
                }
                store8(o, d, o0)
                store8(o, d &+ 8, o1)
                store8(o, d &+ 16, o2)
                store8(o, d &+ 24, o3)
                d &+= 32
            }
            while d < D8 {
                var o0 = SIMD8<Float>()
                for p in 0..<visible { o0 = madd(o0, SIMD8<Float>(repeating: scores[p]), load8(values + (p &* kvStride &+ kvh &* D), d)) }
                store8(o, d, o0)
                d &+= 8
            }
            while d < D {
                var acc: Float = 0
                for p in 0..<visible { acc += scores[p] * values[p &* kvStride &+ kvh &* D &+ d] }
                o[d] = acc
                d &+= 1
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
