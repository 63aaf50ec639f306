// Causal scaled dot-product attention of new query tokens over a KV cache, with grouped-query heads:
// query head h reads KV head h / (H / KVH). Query t sits at absolute position p0 + t and attends to
// cache positions 0...p0+t (the new tokens' keys and values are already written to the cache).
// Strategy: a job takes up to 32 rows that share a KV head (consecutive tokens × the group's heads: in
// decode, one token's heads of a group), in tiles of four, over keys and values in blocks of 64 positions:
// each block is read from memory once for the job's rows and widened once per tile of four (decode at 512+
// cached positions splits a head's scores by positions and its values by lanes between workers). At
// long prompts attention, not the matrices, is most of prefill (62% of a 4096-token prompt of the small
// shape when every row read the whole cache alone). Per row: dot products with two FMA chains (lanes
// d mod 16 < 8 and ≥ 8, one 16-lane register), a max-subtracted softmax, then the weighted sum of value
// rows with each output lane one FMA chain over the positions in order. Tiles and blocks run exactly
// those chains, so every row's result is bitwise what it gets alone: a token's attention does not depend
// on the prefill chunk it came in (the scheduler's chunking invariance).
// Keys and values are read in the cache's type (f32, f16 or q8_0, KVRows.swift) and widened in
// registers; q8_0's per-32 scales multiply a block's products once (keys) and the softmax weight (values).
// Names: T = new tokens, H = query heads, KVH = KV heads, D = head dim, P = cache positions used.

import Foundation

#if INTERNKIT_AVX512
    import _Builtin_intrinsics.intel
#endif

/// Rows of attention scores each pool worker needs in `attention`'s scratch: the rows of one KV head that
/// a prefill job attends together (eight tiles of four).
public let attentionScratchRows = 32

/// Positions per block of keys and values in prefill tiles: 64 keys of a 128-wide head are 16 KB in f16.
private let attentionKeyBlock = 64

/// Decode splits a KV head's work between workers from this many cached positions on, in ranges of this
/// many positions (shorter contexts: three pool calls would cost more than the imbalance).
private let decodeSplitPositions = 512

/// How many positions ahead the first reader of keys and values prefetches them: about a memory latency's
/// worth of positions (a key takes ~10–15 cycles of a tile's arithmetic, a value ~5).
private let keyPrefetchPositions = 32
private let valuePrefetchPositions = 96

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
    let rowsPerKVHead = T * group
    @inline(__always) func headRows(_ kvh: Int, first: Int = 0, count: Int = rowsPerKVHead) -> KVHeadRows {
        KVHeadRows(query: query, out: out, H: H, D: D, p0: p0, group: group, kvHead: kvh, first: first, count: count)
    }
    // Tiles need whole 32-lane blocks (real heads: 64, 128) and more than one row per KV head.
    guard D % 32 == 0, rowsPerKVHead > 1 else {
        let body = { (range: Range<Int>, worker: Int) in
            let scores = scratch + worker * attentionScratchRows * scoresCapacity
            for job in range {
                let t = job / H, h = job % H, kvh = h / group
                let (q, o, visible) = headRows(kvh)(t * group + h % group)
                heads.attendRow(q, o, kvHead: kvh, visible: visible, scores: scores)
            }
        }
        if let pool { pool.parallelFor(T * H, body) } else { body(0..<(T * H), 0) }
        return
    }
    let tilesPerKVHead = (group + 3) / 4
    if T == 1, let pool, pool.threadCount > 1, p0 + 1 >= decodeSplitPositions,
        KVH * tilesPerKVHead * 4 <= pool.threadCount * attentionScratchRows
    {
        // Decode at a long context: one job per KV head would leave workers idle wherever the KV heads do not
        // divide among them (SmolLM2's 3 on 2 cores, InternLM2's 8 on 16). Scores are split by position
        // ranges, values by 32-lane blocks (each lane is its own chain): the same arithmetic, every worker busy.
        let visible = p0 + 1, chunks = (visible + decodeSplitPositions - 1) / decodeSplitPositions
        let rowsPerHead = tilesPerKVHead * 4
        @inline(__always) func headScores(_ kvh: Int) -> UnsafeMutablePointer<Float> { scratch + kvh * rowsPerHead * scoresCapacity }
        pool.parallelFor(KVH * chunks) { range, _ in
            for unit in range {
                let kvh = unit % KVH, chunk = unit / KVH
                let positions = (chunk * decodeSplitPositions)..<min(visible, (chunk + 1) * decodeSplitPositions)
                heads.scoreTiles(tilesPerKVHead, headRows(kvh), kvHead: kvh, scores: headScores(kvh), stride: scoresCapacity, positions: positions)
            }
        }
        pool.parallelFor(KVH * rowsPerHead) { range, _ in
            for row in range { softmax(scratch + row * scoresCapacity, count: visible) }
        }
        pool.parallelFor(KVH * (D / 32)) { range, _ in
            for unit in range {
                let kvh = unit % KVH, lanes = (unit / KVH * 32)..<(unit / KVH * 32 + 32)
                heads.valueTiles(tilesPerKVHead, headRows(kvh), kvHead: kvh, scores: headScores(kvh), stride: scoresCapacity, lanes: lanes)
            }
        }
        return
    }
    // Rows of one KV head in token-major order (row i: token i / group, head kvh · group + i % group),
    // attentionScratchRows to a job, in tiles of four. Jobs run the last tokens' rows first: they see the most
    // positions, and the pool hands out its chunks in order, so the long ones do not end up last on one worker.
    let blocksPerKVHead = (rowsPerKVHead + attentionScratchRows - 1) / attentionScratchRows
    let body = { (range: Range<Int>, worker: Int) in
        let scores = scratch + worker * attentionScratchRows * scoresCapacity
        for job in range {
            let kvh = job % KVH, block = blocksPerKVHead - 1 - job / KVH
            let first = block * attentionScratchRows, count = min(attentionScratchRows, rowsPerKVHead - first)
            let rows = headRows(kvh, first: first, count: count)
            // Two or three rows left over still share their loads: the tile repeats the last row (the same
            // chains, written twice to one output). This is decode's case too: a token's heads of one group.
            let tiles = count / 4 + (count % 4 >= 2 ? 1 : 0)
            if tiles > 0 { heads.attendTiles(tiles, rows, kvHead: kvh, scores: scores, stride: scoresCapacity) }
            if count % 4 == 1 {
                let (q, o, visible) = rows(count - 1)
                heads.attendRow(q, o, kvHead: kvh, visible: visible, scores: scores)
            }
        }
    }
    if let pool { pool.parallelFor(KVH * blocksPerKVHead, body) } else { body(0..<(KVH * blocksPerKVHead), 0) }
}

/// A (token, head) row: its query, its output and how many positions it sees.
private typealias AttentionRow = (q: UnsafePointer<Float>, o: UnsafeMutablePointer<Float>, visible: Int)

/// The `count` rows of KV head `kvHead` from row `first` on, in token-major order (row i: token i / group,
/// head kvHead · group + i % group); indices past the last give the last row (a tile's padding).
private struct KVHeadRows {
    let query: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    let H: Int, D: Int, p0: Int, group: Int, kvHead: Int, first: Int, count: Int

    @inline(__always) func callAsFunction(_ i: Int) -> AttentionRow {
        let row = first &+ Swift.min(i, count &- 1)
        let t = row / group, h = kvHead &* group &+ row % group
        return (query + (t &* H &+ h) &* D, out + (t &* H &+ h) &* D, p0 &+ t &+ 1)
    }
}

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

    /// Asks for KV head `kvh`'s key or value row at position `p` (when p < `end`) ahead of its use. Rows of
    /// a head lie a whole cache row apart, and in decode nothing else reads them: without it the score loop
    /// waited on every key (a long context's cache is far larger than L3), at a third of the bandwidth.
    @inline(__always) func prefetchRow(_ base: UnsafeRawPointer, _ p: Int, _ kvh: Int, before end: Int, lanes: Range<Int>? = nil) {
        let lanes = lanes ?? 0..<D
        if p < end { prefetch(base + (element(p, kvh) &+ lanes.lowerBound) &* L.stride, bytes: lanes.count &* L.stride) }
    }

    /// One row alone: scores over `visible` positions, softmax, weighted sum of values into `o`.
    @inline(__always)
    func attendRow(_ q: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, kvHead kvh: Int, visible: Int, scores: UnsafeMutablePointer<Float>) {
        for p in 0..<visible {
            prefetchRow(keys, p &+ keyPrefetchPositions, kvh, before: visible)
            scores[p] = dot(q, element(p, kvh)) * scale
        }
        softmax(scores, count: visible)
        var d = 0
        while d &+ 32 <= D {
            var (o0, o1) = (SIMD16<Float>(), SIMD16<Float>())
            accumulateValues(&o0, &o1, scores, kvh, d, 0..<visible, prefetching: d == 0)
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

    /// `tiles` × 4 rows of one KV head, `rows(0)...` in ascending tokens (so row 0 of a tile sees the
    /// fewest positions), each row's scores at `scores + i · stride`. Keys and values go in blocks of
    /// `attentionKeyBlock` positions that every tile reads while the block is in cache (at a 4k context a
    /// head's keys and values are 2 MB, more than L2: read once per tile they made prefill memory-bound),
    /// and within a tile each key and value is widened once for the four rows. Bitwise `attendRow` for
    /// every row: the same dot products, and each output lane one FMA chain over the positions in order
    /// (kept in the output rows between blocks). D is a multiple of 32.
    func attendTiles(_ tiles: Int, _ rows: KVHeadRows, kvHead kvh: Int, scores: UnsafeMutablePointer<Float>, stride: Int) {
        let count = tiles &* 4
        scoreTiles(tiles, rows, kvHead: kvh, scores: scores, stride: stride, positions: 0..<rows(count &- 1).visible)
        for i in 0..<count { softmax(scores + i &* stride, count: rows(i).visible) }
        valueTiles(tiles, rows, kvHead: kvh, scores: scores, stride: stride, lanes: 0..<D)
    }

    /// The positions of block [start, end) that row r of a tile whose first row sees `shared` positions
    /// takes alone (the ones before `shared` the tile takes together).
    @inline(__always) func own(_ r: AttentionRow, _ shared: Int, _ start: Int, _ end: Int) -> Range<Int> {
        let lower = Swift.max(start, shared), upper = Swift.min(end, r.visible)
        return lower..<Swift.max(lower, upper)
    }

    /// `attendTiles`' scores at `positions` (unnormalized, scaled), block by block.
    func scoreTiles(
        _ tiles: Int, _ rows: KVHeadRows, kvHead kvh: Int, scores: UnsafeMutablePointer<Float>, stride: Int, positions: Range<Int>
    ) {
        let last = Swift.min(positions.upperBound, rows(tiles &* 4 &- 1).visible)
        var start = positions.lowerBound
        while start < last {
            let end = Swift.min(start &+ attentionKeyBlock, last)
            for tile in 0..<tiles {
                let r0 = rows(4 &* tile), r1 = rows(4 &* tile &+ 1), r2 = rows(4 &* tile &+ 2), r3 = rows(4 &* tile &+ 3)
                let s0 = scores + 4 &* tile &* stride, s1 = s0 + stride, s2 = s1 + stride, s3 = s2 + stride
                var p = start
                while p < Swift.min(end, r0.visible) {
                    if tile == 0 { prefetchRow(keys, p &+ keyPrefetchPositions, kvh, before: last) }
                    let (a, b, c, d) = dot4(r0.q, r1.q, r2.q, r3.q, element(p, kvh))
                    s0[p] = a * scale
                    s1[p] = b * scale
                    s2[p] = c * scale
                    s3[p] = d * scale
                    p &+= 1
                }
                for p in own(r1, r0.visible, start, end) { s1[p] = dot(r1.q, element(p, kvh)) * scale }
                for p in own(r2, r0.visible, start, end) { s2[p] = dot(r2.q, element(p, kvh)) * scale }
                for p in own(r3, r0.visible, start, end) { s3[p] = dot(r3.q, element(p, kvh)) * scale }
            }
            start = end
        }
    }

    /// `attendTiles`' outputs at `lanes` (multiples of 32) from softmaxed scores: zeroed, then every position
    /// block by block.
    func valueTiles(
        _ tiles: Int, _ rows: KVHeadRows, kvHead kvh: Int, scores: UnsafeMutablePointer<Float>, stride: Int, lanes: Range<Int>
    ) {
        let last = rows(tiles &* 4 &- 1).visible
        for i in 0..<(tiles &* 4) { (rows(i).o + lanes.lowerBound).update(repeating: 0, count: lanes.count) }
        var start = 0
        while start < last {
            let end = Swift.min(start &+ attentionKeyBlock, last)
            for tile in 0..<tiles {
                let r0 = rows(4 &* tile), r1 = rows(4 &* tile &+ 1), r2 = rows(4 &* tile &+ 2), r3 = rows(4 &* tile &+ 3)
                guard start < r3.visible else { continue }
                let s0 = UnsafePointer(scores + 4 &* tile &* stride), s1 = s0 + stride, s2 = s1 + stride, s3 = s2 + stride
                let shared = start..<Swift.max(start, Swift.min(end, r0.visible))
                var d = lanes.lowerBound
                while d < lanes.upperBound {
                    // Four rows × 32 lanes side by side over the shared positions, then each row's own.
                    var o00 = load16(r0.o, d), o01 = load16(r0.o, d &+ 16), o10 = load16(r1.o, d), o11 = load16(r1.o, d &+ 16)
                    var o20 = load16(r2.o, d), o21 = load16(r2.o, d &+ 16), o30 = load16(r3.o, d), o31 = load16(r3.o, d &+ 16)
                    for p in shared {
                        if tile == 0 && d == lanes.lowerBound {
                            prefetchRow(values, p &+ valuePrefetchPositions, kvh, before: last, lanes: lanes)
                        }
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
                    accumulateValues(&o10, &o11, s1, kvh, d, own(r1, r0.visible, start, end))
                    accumulateValues(&o20, &o21, s2, kvh, d, own(r2, r0.visible, start, end))
                    accumulateValues(&o30, &o31, s3, kvh, d, own(r3, r0.visible, start, end))
                    store16(r0.o, d, o00)
                    store16(r0.o, d &+ 16, o01)
                    store16(r1.o, d, o10)
                    store16(r1.o, d &+ 16, o11)
                    store16(r2.o, d, o20)
                    store16(r2.o, d &+ 16, o21)
                    store16(r3.o, d, o30)
                    store16(r3.o, d &+ 16, o31)
                    d &+= 32
                }
            }
            start = end
        }
    }

    /// The softmax weight of position `p` for value element `v` (q8_0: times the value's block scale).
    @inline(__always) func weight(_ scores: UnsafePointer<Float>, _ p: Int, _ v: Int) -> Float {
        L.isBlockScaled ? scores[p] * valueScales![v &>> 5] : scores[p]
    }

    /// (o0, o1) += weight · value lanes d..<d + 32 over `positions`, in order (prefetching whole value rows
    /// ahead on request: the first pass over the positions).
    @inline(__always)
    func accumulateValues(
        _ o0: inout SIMD16<Float>, _ o1: inout SIMD16<Float>, _ scores: UnsafePointer<Float>, _ kvh: Int, _ d: Int,
        _ positions: Range<Int>, prefetching: Bool = false
    ) {
        for p in positions {
            if prefetching { prefetchRow(values, p &+ valuePrefetchPositions, kvh, before: positions.upperBound) }
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
    #if INTERNKIT_AVX512
        // Lane permutes by index vectors (the compiler turned the shuffles below into lane-by-lane code).
        @inline(__always) func m(_ v: SIMD16<Float>) -> __m512 { unsafeBitCast(v, to: __m512.self) }
        @inline(__always) func index(_ v: SIMD16<Int32>) -> __m512i { unsafeBitCast(v, to: __m512i.self) }
        let lows = index(SIMD16(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23))
        let highs = index(SIMD16(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
        let ab = _mm512_add_ps(_mm512_permutex2var_ps(m(a), lows, m(b)), _mm512_permutex2var_ps(m(a), highs, m(b)))
        let cd = _mm512_add_ps(_mm512_permutex2var_ps(m(c), lows, m(d)), _mm512_permutex2var_ps(m(c), highs, m(d)))
        let firstQuarters = index(SIMD16(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27))
        let secondQuarters = index(SIMD16(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31))
        let four = _mm512_add_ps(_mm512_permutex2var_ps(ab, firstQuarters, cd), _mm512_permutex2var_ps(ab, secondQuarters, cd))
        // Within each 128-bit lane (one vector's four sums): + lanes two apart, then + the neighbour.
        let two = _mm512_add_ps(four, _mm512_permutevar_ps(four, index(SIMD16(2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1))))
        let one = _mm512_add_ps(two, _mm512_permutevar_ps(two, index(SIMD16(1, 0, 3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0, 3, 2))))
        let sums = _mm512_permutexvar_ps(index(SIMD16(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), one)
        return unsafeBitCast(_mm512_castps512_ps128(sums), to: SIMD4<Float>.self)
    #else
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
    #endif
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
