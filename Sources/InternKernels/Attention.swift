// Causal scaled dot-product attention of new query tokens over a KV cache, with grouped-query heads:
// query head h reads KV head h / (H / KVH). Query t sits at absolute position p0 + t and attends to
// cache positions 0...p0+t (the new tokens' keys and values are already written to the cache).
// Strategy: one (token, head) row at a time in decode; in prefill, tiles of four rows that share a KV head
// (consecutive tokens × the group's heads), so each cached key and value is loaded and widened once for
// four rows instead of once per row — at long prompts attention, not the matrices, is most of prefill
// (62% of a 4096-token prompt of the small shape before tiling). Per row: dot products with two FMA chains
// (lanes d mod 16 < 8 and ≥ 8, one 16-lane register), a max-subtracted softmax, then the weighted sum of
// value rows with each output lane one FMA chain over the positions in order. A tile runs exactly those
// chains, four rows side by side, so every row's result is bitwise what it gets alone: a token's
// attention does not depend on the prefill chunk it came in (the scheduler's chunking invariance).
// Keys and values are read in the cache's type (f32, f16 or q8_0, KVRows.swift) and widened in
// registers; q8_0's per-32 scales multiply a block's products once (keys) and the softmax weight (values).
// Names: T = new tokens, H = query heads, KVH = KV heads, D = head dim, P = cache positions used.

import Foundation

/// Rows of attention scores each pool worker needs in `attention`'s scratch: a tile's four rows.
public let attentionScratchRows = 4

/// out (T, H, D) = softmax(q kᵀ / sqrt(D), causal) v over a layer's cached keys and values, read in the
/// cache's stored form (KVRows.swift).
public func attention(
    _ out: UnsafeMutablePointer<Float>,  // (T, H, D)
    query: UnsafePointer<Float>,  // (T, H, D)
    cache: KVLayer,  // (positions, KVH, D), positions ≥ p0 + T
    tokens T: Int, startPosition p0: Int, heads H: Int, kvHeads KVH: Int, headDim D: Int,
    scratch: UnsafeMutablePointer<Float>,  // (pool threads × attentionScratchRows, p0 + T)
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
    let heads = AttentionHeads<L>(cache: cache, kvHeads: KVH, headDim: D)
    let group = H / KVH
    let scoresCapacity = p0 + T
    // A row is one (token, head) pair; its query, output and the number of positions it sees.
    @inline(__always) func row(_ t: Int, _ h: Int) -> AttentionRow {
        (query + (t &* H &+ h) &* D, out + (t &* H &+ h) &* D, p0 &+ t &+ 1)
    }
    // Tiles need whole 32-lane blocks (real heads: 64, 128) and more than one row per KV head.
    let rowsPerKVHead = T * group
    guard D % 32 == 0, rowsPerKVHead > 1 else {
        let body = { (range: Range<Int>, worker: Int) in
            let scores = scratch + worker * attentionScratchRows * scoresCapacity
            for job in range {
                let (q, o, visible) = row(job / H, job % H)
                heads.attendRow(q, o, kvHead: job % H / group, visible: visible, scores: scores)
            }
        }
        if let pool { pool.parallelFor(T * H, body) } else { body(0..<(T * H), 0) }
        return
    }
    // Rows of one KV head in token-major order (row i: token i / group, head kvh · group + i % group), four to
    // a tile. Jobs run the last tokens' tiles first: they see the most positions, and the pool hands out its
    // chunks in order, so the long ones do not end up last on one worker.
    let tilesPerKVHead = (rowsPerKVHead + attentionScratchRows - 1) / attentionScratchRows
    let body = { (range: Range<Int>, worker: Int) in
        let scores = scratch + worker * attentionScratchRows * scoresCapacity
        for job in range {
            let kvh = job % KVH, tile = tilesPerKVHead - 1 - job / KVH
            let first = tile * attentionScratchRows, count = min(attentionScratchRows, rowsPerKVHead - first)
            func tileRow(_ i: Int) -> AttentionRow {
                row((first + i) / group, kvh * group + (first + i) % group)
            }
            if count == 4 {
                heads.attendTile(tileRow(0), tileRow(1), tileRow(2), tileRow(3), kvHead: kvh, scores: scores, stride: scoresCapacity)
            } else {
                for i in 0..<count {
                    let (q, o, visible) = tileRow(i)
                    heads.attendRow(q, o, kvHead: kvh, visible: visible, scores: scores)
                }
            }
        }
    }
    if let pool { pool.parallelFor(KVH * tilesPerKVHead, body) } else { body(0..<(KVH * tilesPerKVHead), 0) }
}

/// A (token, head) row: its query, its output and how many positions it sees.
private typealias AttentionRow = (q: UnsafePointer<Float>, o: UnsafeMutablePointer<Float>, visible: Int)

/// One layer's cached keys and values as the attention loops read them.
private struct AttentionHeads<L: KVElementLoader> {
    let keys: UnsafeRawPointer, values: UnsafeRawPointer
    /// q8_0 only: the scale of element i is scales[i >> 5] (blocks of 32 along the row).
    let keyScales: UnsafePointer<Float>?, valueScales: UnsafePointer<Float>?
    let D: Int, kvStride: Int, scale: Float

    init(cache: KVLayer, kvHeads: Int, headDim: Int) {
        keys = UnsafeRawPointer(cache.keys)
        values = UnsafeRawPointer(cache.values)
        keyScales = UnsafePointer(cache.keyScales)
        valueScales = UnsafePointer(cache.valueScales)
        D = headDim
        kvStride = kvHeads * headDim
        scale = 1 / Float(headDim).squareRoot()
    }

    /// Element index of KV head `kvh`'s row at position `p`.
    @inline(__always) func element(_ p: Int, _ kvh: Int) -> Int { p &* kvStride &+ kvh &* D }

    /// One row alone: scores over `visible` positions, softmax, weighted sum of values into `o`.
    @inline(__always)
    func attendRow(_ q: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, kvHead kvh: Int, visible: Int, scores: UnsafeMutablePointer<Float>) {
        for p in 0..<visible { scores[p] = dot(q, element(p, kvh)) * scale }
        softmax(scores, count: visible)
        var d = 0
        while d &+ 32 <= D {
            var (o0, o1) = (SIMD16<Float>(), SIMD16<Float>())
            accumulateValues(&o0, &o1, scores, kvh, d, 0..<visible)
            store16(o, d, o0)
            store16(o, d &+ 16, o1)
            d &+= 32
        }
        // Heads whose size is not a multiple of 32 (tests; no real model): the same chains, 8 lanes and 1.
        while d &+ 8 <= D {
            var o0 = SIMD8<Float>()
            for p in 0..<visible {
                let v = element(p, kvh) &+ d
                o0 = madd(o0, SIMD8<Float>(repeating: weight(scores, p, v)), L.load8(values, v))
            }
            store8(o, d, o0)
            d &+= 8
        }
        while d < D {
            var acc: Float = 0
            for p in 0..<visible {
                let v = element(p, kvh) &+ d
                acc += weight(scores, p, v) * L.load1(values, v)
            }
            o[d] = acc
            d &+= 1
        }
    }

    /// Four rows of one KV head (tokens in ascending order, so row 0 sees the fewest positions): each key
    /// and value is loaded once for the four. Bitwise `attendRow` for each row. D is a multiple of 32.
    @inline(__always)
    func attendTile(
        _ r0: AttentionRow,
        _ r1: AttentionRow,
        _ r2: AttentionRow,
        _ r3: AttentionRow,
        kvHead kvh: Int, scores: UnsafeMutablePointer<Float>, stride: Int
    ) {
        let s0 = scores, s1 = scores + stride, s2 = s1 + stride, s3 = s2 + stride
        let shared = r0.visible  // positions every row sees
        for p in 0..<shared {
            let (a, b, c, d) = dot4(r0.q, r1.q, r2.q, r3.q, element(p, kvh))
            s0[p] = a * scale
            s1[p] = b * scale
            s2[p] = c * scale
            s3[p] = d * scale
        }
        @inline(__always) func finishScores(_ r: AttentionRow, _ s: UnsafeMutablePointer<Float>) {
            for p in shared..<r.visible { s[p] = dot(r.q, element(p, kvh)) * scale }
            softmax(s, count: r.visible)
        }
        finishScores(r0, s0)
        finishScores(r1, s1)
        finishScores(r2, s2)
        finishScores(r3, s3)
        var d = 0
        while d < D {
            // Four rows × 32 lanes side by side over the shared positions, then each row's own positions.
            var o00 = SIMD16<Float>(), o01 = o00, o10 = o00, o11 = o00, o20 = o00, o21 = o00, o30 = o00, o31 = o00
            for p in 0..<shared {
                let v = element(p, kvh) &+ d
                let v0 = L.load16(values, v), v1 = L.load16(values, v &+ 16)
                let w0 = SIMD16<Float>(repeating: weight(s0, p, v)), w1 = SIMD16<Float>(repeating: weight(s1, p, v))
                let w2 = SIMD16<Float>(repeating: weight(s2, p, v)), w3 = SIMD16<Float>(repeating: weight(s3, p, v))
                o00 = madd(o00, w0, v0)
                o01 = madd(o01, w0, v1)
                o10 = madd(o10, w1, v0)
                o11 = madd(o11, w1, v1)
                o20 = madd(o20, w2, v0)
                o21 = madd(o21, w2, v1)
                o30 = madd(o30, w3, v0)
                o31 = madd(o31, w3, v1)
            }
            @inline(__always) func finish(
                _ o0: inout SIMD16<Float>, _ o1: inout SIMD16<Float>, _ s: UnsafePointer<Float>,
                _ r: AttentionRow
            ) {
                accumulateValues(&o0, &o1, s, kvh, d, shared..<r.visible)
                store16(r.o, d, o0)
                store16(r.o, d &+ 16, o1)
            }
            finish(&o00, &o01, s0, r0)
            finish(&o10, &o11, s1, r1)
            finish(&o20, &o21, s2, r2)
            finish(&o30, &o31, s3, r3)
            d &+= 32
        }
    }

    /// The softmax weight of position `p` for value element `v` (q8_0: times the value's block scale).
    @inline(__always) func weight(_ scores: UnsafePointer<Float>, _ p: Int, _ v: Int) -> Float {
        L.isBlockScaled ? scores[p] * valueScales![v &>> 5] : scores[p]
    }

    /// (o0, o1) += weight · value lanes d..<d + 32 over `positions`, in order.
    @inline(__always)
    func accumulateValues(
        _ o0: inout SIMD16<Float>, _ o1: inout SIMD16<Float>, _ scores: UnsafePointer<Float>, _ kvh: Int, _ d: Int,
        _ positions: Range<Int>
    ) {
        for p in positions {
            let v = element(p, kvh) &+ d
            let w = SIMD16<Float>(repeating: weight(scores, p, v))
            o0 = madd(o0, w, L.load16(values, v))
            o1 = madd(o1, w, L.load16(values, v &+ 16))
        }
    }

    /// q · the key at element index `k` (unscaled). Lanes of 16: lane j sums elements d ≡ j (mod 16) in
    /// ascending order (the two 8-lane FMA chains of the first kernels, in one register), q8_0 per block
    /// of 32 scaled once; then the lanes are summed in a fixed tree.
    @inline(__always)
    func dot(_ q: UnsafePointer<Float>, _ k: Int) -> Float {
        if L.isBlockScaled {
            var a = SIMD8<Float>()
            var d = 0
            while d < D {
                var b = load16(q, d) * L.load16(keys, k &+ d)
                b = madd(b, load16(q, d &+ 16), L.load16(keys, k &+ d &+ 16))
                a = madd(a, b.lowHalf + b.highHalf, SIMD8(repeating: keyScales![(k &+ d) &>> 5]))
                d &+= 32
            }
            return laneSum(a)
        }
        var a = SIMD16<Float>()
        var d = 0
        while d &+ 16 <= D {
            a = madd(a, load16(q, d), L.load16(keys, k &+ d))
            d &+= 16
        }
        var low = a.lowHalf
        let high = a.highHalf
        if d &+ 8 <= D {
            low = madd(low, load8(q, d), L.load8(keys, k &+ d))
            d &+= 8
        }
        var s = laneSum(low + high)
        while d < D {
            s += q[d] * L.load1(keys, k &+ d)
            d &+= 1
        }
        return s
    }

    /// `dot` of four queries with one key (loaded once), each with `dot`'s exact arithmetic. D is a
    /// multiple of 32.
    @inline(__always)
    func dot4(
        _ q0: UnsafePointer<Float>, _ q1: UnsafePointer<Float>, _ q2: UnsafePointer<Float>, _ q3: UnsafePointer<Float>, _ k: Int
    ) -> (Float, Float, Float, Float) {
        if L.isBlockScaled {
            var a0 = SIMD8<Float>(), a1 = a0, a2 = a0, a3 = a0
            var d = 0
            while d < D {
                let k0 = L.load16(keys, k &+ d), k1 = L.load16(keys, k &+ d &+ 16)
                let scale = SIMD8<Float>(repeating: keyScales![(k &+ d) &>> 5])
                @inline(__always) func block(_ a: SIMD8<Float>, _ q: UnsafePointer<Float>) -> SIMD8<Float> {
                    let b = madd(load16(q, d) * k0, load16(q, d &+ 16), k1)
                    return madd(a, b.lowHalf + b.highHalf, scale)
                }
                a0 = block(a0, q0)
                a1 = block(a1, q1)
                a2 = block(a2, q2)
                a3 = block(a3, q3)
                d &+= 32
            }
            return (laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3))
        }
        var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0
        var d = 0
        while d < D {
            let kv = L.load16(keys, k &+ d)
            a0 = madd(a0, load16(q0, d), kv)
            a1 = madd(a1, load16(q1, d), kv)
            a2 = madd(a2, load16(q2, d), kv)
            a3 = madd(a3, load16(q3, d), kv)
            d &+= 16
        }
        let sums = laneSums(a0, a1, a2, a3)
        return (sums[0], sums[1], sums[2], sums[3])
    }
}

/// `laneSum` of four vectors at once: the same tree of pairwise sums (lane j + lane j + 8, then + 4, + 2,
/// + 1), so each result is bitwise `laneSum`'s, with the four vectors' lanes shuffled side by side
/// instead of one vector's folded down alone (a third of a tile's score instructions otherwise).
@inline(__always)
private func laneSums(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>) -> SIMD4<Float> {
    let ab = SIMD16(lowHalf: a.lowHalf, highHalf: b.lowHalf) + SIMD16(lowHalf: a.highHalf, highHalf: b.highHalf)
    let cd = SIMD16(lowHalf: c.lowHalf, highHalf: d.lowHalf) + SIMD16(lowHalf: c.highHalf, highHalf: d.highHalf)
    // ab, cd: eight lanes per vector; now lanes j and j + 4 of each, four lanes per vector.
    let low = SIMD16(
        lowHalf: SIMD8(lowHalf: ab.lowHalf.lowHalf, highHalf: ab.highHalf.lowHalf),
        highHalf: SIMD8(lowHalf: cd.lowHalf.lowHalf, highHalf: cd.highHalf.lowHalf))
    let high = SIMD16(
        lowHalf: SIMD8(lowHalf: ab.lowHalf.highHalf, highHalf: ab.highHalf.highHalf),
        highHalf: SIMD8(lowHalf: cd.lowHalf.highHalf, highHalf: cd.highHalf.highHalf))
    let four = low + high
    // Per vector (f0, f1, f2, f3): (f0 + f2) + (f1 + f3), as laneSum's last two steps.
    let even = four.evenHalf, odd = four.oddHalf
    return (even.evenHalf + even.oddHalf) + (odd.evenHalf + odd.oddHalf)
}

#if !INTERNKIT_AVX512
    /// `madd` on 16 lanes (MatMul.swift has it only where AVX-512 is the vector width): fused where FMA is.
    @inline(__always)
    private func madd(_ acc: SIMD16<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        #if INTERNKIT_FMA || arch(arm64)
            acc.addingProduct(a, b)
        #else
            acc + a * b
        #endif
    }
#endif

@inline(__always)
private func load16(_ p: UnsafePointer<Float>, _ index: Int) -> SIMD16<Float> {
    UnsafeRawPointer(p + index).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always)
private func store16(_ p: UnsafeMutablePointer<Float>, _ index: Int, _ value: SIMD16<Float>) {
    UnsafeMutableRawPointer(p + index).storeBytes(of: value, as: SIMD16<Float>.self)
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
