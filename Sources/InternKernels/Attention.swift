// Causal scaled dot-product attention of new query tokens over a KV cache, with grouped-query heads:
// query head h reads KV head h / (H / KVH). Query t sits at absolute position p0 + t and attends to
// cache positions 0...p0+t (the new tokens' keys and values are already written to the cache).
// Strategy: threaded over (token, head) pairs, each worker with its own row of score scratch; per pair,
// SIMD8 dot products for scores (two FMA chains), a max-subtracted softmax, then the weighted sum of
// value rows with 32 output lanes kept in registers over all positions (no store per position). Keys and
// values are read in the cache's type (f32, f16 or q8_0, KVRows.swift) and widened in registers; q8_0's
// per-32 scales multiply a block's products once (keys) and the softmax weight (values).
// Names: T = new tokens, H = query heads, KVH = KV heads, D = head dim, P = cache positions used.

import Foundation

/// out (T, H, D) = softmax(q kᵀ / sqrt(D), causal) v over a layer's cached keys and values, read in the
/// cache's stored form (KVRows.swift).
public func attention(
    _ out: UnsafeMutablePointer<Float>,  // (T, H, D)
    query: UnsafePointer<Float>,  // (T, H, D)
    cache: KVLayer,  // (positions, KVH, D), positions ≥ p0 + T
    tokens T: Int, startPosition p0: Int, heads H: Int, kvHeads KVH: Int, headDim D: Int,
    scratch: UnsafeMutablePointer<Float>,  // (pool threads, p0 + T)
    pool: ThreadPool?
) {
    precondition(cache.rowSize == KVH * D, "KV rows of \(cache.rowSize) elements for \(KVH) heads of \(D)")
    precondition(cache.type.unsupportedReason(headDim: D) == nil, "q8_0 KV blocks straddle heads")
    switch cache.type {
    case .f32: attentionHeads(F32Loader.self, out, query, cache, T, p0, H, KVH, D, scratch, pool)
    case .f16: attentionHeads(F16Loader.self, out, query, cache, T, p0, H, KVH, D, scratch, pool)
    case .q8_0: attentionHeads(Q8Loader.self, out, query, cache, T, p0, H, KVH, D, scratch, pool)
    }
}

/// `attention` for one storage type: L loads its elements (the loops specialise per type).
private func attentionHeads<L: KVElementLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ query: UnsafePointer<Float>, _ cache: KVLayer,
    _ T: Int, _ p0: Int, _ H: Int, _ KVH: Int, _ D: Int, _ scratch: UnsafeMutablePointer<Float>, _ pool: ThreadPool?
) {
    let group = H / KVH
    let kvStride = KVH * D
    let scale = 1 / Float(D).squareRoot()
    let scoresCapacity = p0 + T
    let D8 = D & ~7, D32 = D & ~31
    let keys = UnsafeRawPointer(cache.keys), values = UnsafeRawPointer(cache.values)
    let keyScales = UnsafePointer(cache.keyScales), valueScales = UnsafePointer(cache.valueScales)
    // The q8_0 scale of element i is scales[i >> 5] (blocks of 32 along the row).
    let body = { (range: Range<Int>, worker: Int) in
        let scores = scratch + worker * scoresCapacity
        for job in range {
            let t = job / H, h = job % H
            let kvh = h / group
            let q = query + (t * H + h) * D
            let o = out + (t * H + h) * D
            let visible = p0 + t + 1
            for p in 0..<visible {
                let k = p &* kvStride &+ kvh &* D  // element index of the key row
                var s: Float
                if L.isBlockScaled {
                    // One product vector per 32-block, scaled once (D is a multiple of 32 here).
                    var a = SIMD8<Float>()
                    var d = 0
                    while d < D {
                        var b0 = load8(q, d) * L.load8(keys, k &+ d)
                        var b1 = load8(q, d &+ 8) * L.load8(keys, k &+ d &+ 8)
                        b0 = madd(b0, load8(q, d &+ 16), L.load8(keys, k &+ d &+ 16))
                        b1 = madd(b1, load8(q, d &+ 24), L.load8(keys, k &+ d &+ 24))
                        a = madd(a, b0 + b1, SIMD8(repeating: keyScales![(k &+ d) &>> 5]))
                        d &+= 32
                    }
                    s = laneSum(a)
                } else {
                    // Two FMA chains: the dot product is latency-bound with one (D = 64 is only 8 steps).
                    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
                    var d = 0
                    while d &+ 16 <= D8 {
                        a0 = madd(a0, load8(q, d), L.load8(keys, k &+ d))
                        a1 = madd(a1, load8(q, d &+ 8), L.load8(keys, k &+ d &+ 8))
                        d &+= 16
                    }
                    if d < D8 {
                        a0 = madd(a0, load8(q, d), L.load8(keys, k &+ d))
                        d &+= 8
                    }
                    s = laneSum(a0 + a1)
                    while d < D {
                        s += q[d] * L.load1(keys, k &+ d)
                        d &+= 1
                    }
                }
                scores[p] = s * scale
            }
            softmax(scores, count: visible)
            // Weighted sum of value rows, 32 output lanes at a time held in registers across positions.
            @inline(__always) func weight(_ p: Int, _ v: Int) -> Float {
                L.isBlockScaled ? scores[p] * valueScales![v &>> 5] : scores[p]
            }
            var d = 0
            while d < D32 {
                var o0 = SIMD8<Float>(), o1 = o0, o2 = o0, o3 = o0
                for p in 0..<visible {
                    let v = p &* kvStride &+ kvh &* D &+ d
                    let w = SIMD8<Float>(repeating: weight(p, v))
                    o0 = madd(o0, w, L.load8(values, v))
                    o1 = madd(o1, w, L.load8(values, v &+ 8))
                    o2 = madd(o2, w, L.load8(values, v &+ 16))
                    o3 = madd(o3, w, L.load8(values, v &+ 24))
                }
                store8(o, d, o0)
                store8(o, d &+ 8, o1)
                store8(o, d &+ 16, o2)
                store8(o, d &+ 24, o3)
                d &+= 32
            }
            while d < D8 {
                var o0 = SIMD8<Float>()
                for p in 0..<visible {
                    let v = p &* kvStride &+ kvh &* D &+ d
                    o0 = madd(o0, SIMD8<Float>(repeating: weight(p, v)), L.load8(values, v))
                }
                store8(o, d, o0)
                d &+= 8
            }
            while d < D {
                var acc: Float = 0
                for p in 0..<visible {
                    let v = p &* kvStride &+ kvh &* D &+ d
                    acc += weight(p, v) * L.load1(values, v)
                }
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

/// The reference for `attention`: the cached rows read back as f32, explicit loops in Double.
public func attentionReference(
    _ out: UnsafeMutablePointer<Float>, query: UnsafePointer<Float>, cache: KVLayer,
    tokens T: Int, startPosition p0: Int, heads H: Int, kvHeads KVH: Int, headDim D: Int
) {
    let group = H / KVH
    let positions = p0 + T
    var keys = [Float](repeating: 0, count: positions * KVH * D), values = keys
    for p in 0..<positions {
        keys.withUnsafeMutableBufferPointer { cache.key(p, into: $0.baseAddress! + p * KVH * D) }
        values.withUnsafeMutableBufferPointer { cache.value(p, into: $0.baseAddress! + p * KVH * D) }
    }
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
