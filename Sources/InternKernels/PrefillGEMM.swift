// Prefill products with exact f32 activations: out[t, r] = Σ_c W[r, c]·x[t, c] for a whole prompt chunk, W of
// any type a `GEMMWeightRows` converts to f32 (f32/f16/bf16, the ggml blocks of `QuantizedMatMul.swift`, the
// 12-bit packed bf16). A cache-blocked GEMM in the GotoBLAS/BLIS scheme (Goto & van de Geijn, "Anatomy of
// high-performance matrix multiplication", 2008; BLIS's `skx` sgemm is the same 32 × 12 register tile).
// Names: T = tokens, R = rows (output features), C = cols (input features); MR = `gemmTokens`, NR = `gemmRows`,
// KC = `gemmDepth`, NC = `gemmPanelRows`.
// Strategy: threaded over blocks of rows (no reduction between threads). The activations are packed once per
// call into blocks of MR tokens, column-major inside a block (one column step's MR values adjacent, zero for
// missing tokens). For each NC rows × KC columns of weights, the weights are converted to f32 once and packed
// column-major in micro-panels of NR rows (8 × 8 transposes), which stay in L2 (128 KiB) while every token
// block runs through them; a token block's KC columns (12 KiB) stay in L1 across the micro-panels. The
// micro-kernel holds MR × 2 vectors of accumulators (12 × 2 of the 32 AVX-512 registers, 6 × 2 of the 16 AVX2
// ones) and per column loads two weight vectors, broadcasts one activation per token and issues 2·MR FMAs, so
// it is bound by the FMA pipes: about 87% of their measured peak on AMD Zen 4 (`perf`). `matMul`'s row-dot tiles,
// which prefill ran before (10 vector loads per 24 FMAs over whole rows), measured 54–55 t/s of 1.8B bf16
// against 52–61 for this GEMM on the same weights (BENCHMARKS.md, 2026-12-07); the larger gain is the GEMM's
// `vdpbf16ps` form (BFloat16Prefill.swift) and its reading of the packed 12-bit copy.
// Reduction order: every output is one chain of f32 fused multiply-adds over the columns in ascending order
// (the partial sums of a column block go to `out` and come back unchanged), so a token's result does not
// depend on T, on the tiling or on the threads. It differs from `matMul`'s (vector lanes, then a lane sum)
// only in rounding; `WeightMatrix` takes it for prefill, never for decode, so the phase picks the order.
import Foundation

#if INTERNKIT_FMA
    import _Builtin_intrinsics.intel
#endif

#if INTERNKIT_AVX512
    /// Tokens per micro-kernel (MR): 12 × 2 = 24 accumulators + 2 weight vectors + 1 broadcast of 32 registers.
    let gemmTokens = 12
#else
    /// Tokens per micro-kernel (MR): 6 × 2 = 12 accumulators + 2 weight vectors + 1 broadcast of 16 registers.
    let gemmTokens = 6
#endif
/// Rows per micro-kernel (NR): two accumulator vectors per token.
let gemmRows = 2 * FloatVector.scalarCount
/// Units (4 bytes: an f32, or a pair of bf16) per column block (KC): a micro-panel (KC × NR units) is 32 KiB
/// with AVX-512. In columns a multiple of 64 (packed bf16 chunks) and of 256 (Q6_K blocks).
let gemmDepth = 256
/// Rows per packed block of weights (NC, a multiple of `gemmRows`): 128 KiB at KC = 256.
let gemmPanelRows = 128

/// Weight rows as f32 for the GEMM's packing.
protocol GEMMWeightRows {
    /// Row `row`'s columns `from ..< from + count` as f32, in the column order of the activations the
    /// product is given (`from` and `count` are multiples of `gemmDepth` but at the end of a row).
    func convert(row: Int, from: Int, count: Int, into out: UnsafeMutablePointer<Float>)
}

/// Rows read by a `WeightLoader` (float formats and 32-weight ggml blocks, Q6_K).
struct LoaderRows<L: WeightLoader>: GEMMWeightRows {
    let base: UnsafeRawPointer
    let rowBytes: Int

    init(_: L.Type, _ base: UnsafeRawPointer, cols: Int) {
        self.base = base
        rowBytes = L.rowBytes(cols)
    }

    @inline(__always)
    func convert(row: Int, from: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        convertRow(L.self, out, base + row &* rowBytes, from, count)
    }
}

/// One arithmetic of the GEMM: how a block of tokens and a row of weights become 4-byte units (an f32, or a
/// pair of bf16 for `vdpbf16ps`), and the micro-kernels over them, which add onto f32 outputs.
protocol GEMMKernel {
    /// Columns per unit.
    static var columnsPerUnit: Int { get }
    /// Tokens x (m ≤ MR, C) into `dst` (units of C, MR): a unit's MR values adjacent, 0 past the m-th token.
    static func packTokenBlock(_ dst: UnsafeMutableRawPointer, _ x: UnsafePointer<Float>, _ m: Int, _ C: Int)
    /// Row `row`'s columns `from ..< from + count` as units (a last partial unit padded with 0).
    func packRow(_ row: Int, from: Int, count: Int, into out: UnsafeMutableRawPointer)
    /// The micro-kernels' arithmetic on one unit.
    associatedtype Ops: GEMMUnitOps
}

/// Exact f32 products: f32 units, FMA micro-kernels.
struct FloatGEMM<Rows: GEMMWeightRows>: GEMMKernel {
    let rows: Rows

    static var columnsPerUnit: Int { 1 }

    static func packTokenBlock(_ dst: UnsafeMutableRawPointer, _ x: UnsafePointer<Float>, _ m: Int, _ C: Int) {
        let d = dst.assumingMemoryBound(to: Float.self)
        if m < gemmTokens { d.update(repeating: 0, count: gemmTokens &* C) }
        for t in 0..<m {
            let row = x + t &* C
            var p = d + t
            for c in 0..<C {
                p.pointee = row[c]
                p += gemmTokens
            }
        }
    }

    @inline(__always)
    func packRow(_ row: Int, from: Int, count: Int, into out: UnsafeMutableRawPointer) {
        rows.convert(row: row, from: from, count: count, into: out.assumingMemoryBound(to: Float.self))
    }

    typealias Ops = FloatUnitOps
}

/// The arithmetic of a micro-kernel on one unit: NR weights of a panel column (two vectors), one token's
/// value broadcast, and the product added to an accumulator vector.
protocol GEMMUnitOps {
    associatedtype Weights
    associatedtype Broadcast
    /// A vector of the panel at `p` (NR / 2 rows' units).
    static func weights(_ p: UnsafeRawPointer, byteOffset: Int) -> Weights
    /// Token t's unit from `x` in every lane.
    static func broadcast(_ x: UnsafeRawPointer, _ t: Int) -> Broadcast
    /// acc + w · a, lane by lane.
    static func madd(_ acc: FloatVector, _ w: Weights, _ a: Broadcast) -> FloatVector
}

/// f32 units: one fused multiply-add per lane.
enum FloatUnitOps: GEMMUnitOps {
    @inline(__always)
    static func weights(_ p: UnsafeRawPointer, byteOffset: Int) -> FloatVector {
        p.loadUnaligned(fromByteOffset: byteOffset, as: FloatVector.self)
    }

    @inline(__always)
    static func broadcast(_ x: UnsafeRawPointer, _ t: Int) -> FloatVector {
        FloatVector(repeating: x.load(fromByteOffset: t &* 4, as: Float.self))
    }

    @inline(__always)
    static func madd(_ acc: FloatVector, _ w: FloatVector, _ a: FloatVector) -> FloatVector {
        InternKernels.madd(acc, w, a)
    }
}

/// out (T, R) = x (T, C) · Wᵀ for prefill, W (R, C) stored as `type`; threaded over rows when `pool` is given.
/// Exact f32 products (see the header for the order); a token's result is the same whatever T.
public func matMulPrefill(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols) of `type`
    type: WeightType,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    switch type {
    case .f32: gemm(out, FloatGEMM(rows: LoaderRows(F32Loader.self, weight, cols: cols)), input, tokens, rows, cols, pool)
    case .f16: gemm(out, FloatGEMM(rows: LoaderRows(F16Loader.self, weight, cols: cols)), input, tokens, rows, cols, pool)
    case .bf16: gemm(out, FloatGEMM(rows: LoaderRows(BF16Loader.self, weight, cols: cols)), input, tokens, rows, cols, pool)
    }
}

/// The GEMM of the header with `kernel`'s arithmetic.
func gemm<K: GEMMKernel>(
    _ out: UnsafeMutablePointer<Float>, _ kernel: K, _ x: UnsafePointer<Float>, _ T: Int, _ R: Int, _ C: Int, _ pool: ThreadPool?
) {
    guard T > 0, R > 0 else { return }
    guard C > 0 else {
        out.update(repeating: 0, count: T * R)
        return
    }
    let units = (C + K.columnsPerUnit - 1) / K.columnsPerUnit
    let blocks = (T + gemmTokens - 1) / gemmTokens
    let blockBytes = gemmTokens * units * 4
    scratch.with(bytes: blocks * blockBytes) { packed in
        let packTokens = { (range: Range<Int>, _: Int) in
            for b in range {
                K.packTokenBlock(packed + b &* blockBytes, x + b &* gemmTokens &* C, min(gemmTokens, T &- b &* gemmTokens), C)
            }
        }
        let xp = UnsafeRawPointer(packed)
        let body = { (range: Range<Int>, _: Int) in gemmRowRange(out, kernel, xp, T, R, C, units, range) }
        if let pool {
            pool.parallelFor(blocks, packTokens)
            pool.parallelFor(R, granularity: gemmRows, body)
        } else {
            packTokens(0..<blocks, 0)
            body(0..<R, 0)
        }
    }
}

/// Rows `range` of the product: blocks of NC rows × KC units packed once, every token block through them.
private func gemmRowRange<K: GEMMKernel>(
    _ out: UnsafeMutablePointer<Float>, _ kernel: K, _ xp: UnsafeRawPointer, _ T: Int, _ R: Int, _ C: Int, _ units: Int,
    _ range: Range<Int>
) {
    scratch.with(bytes: (gemmPanelRows + 8) * gemmDepth * 4) { panel in
        let staging = panel + gemmPanelRows * gemmDepth * 4
        let blocks = (T + gemmTokens - 1) / gemmTokens
        var r0 = range.lowerBound
        while r0 < range.upperBound {
            let n = min(gemmPanelRows, range.upperBound &- r0)
            let microPanels = (n &+ gemmRows &- 1) / gemmRows
            var u0 = 0
            while u0 < units {
                let ku = min(gemmDepth, units &- u0)
                packWeights(panel, kernel, r0, n, u0, ku, C, staging)
                for b in 0..<blocks {
                    let t0 = b &* gemmTokens, m = min(gemmTokens, T &- t0)
                    let xb = xp + (t0 &* units &+ u0 &* gemmTokens) &* 4
                    for j in 0..<microPanels {
                        let rj = j &* gemmRows
                        microTile(
                            K.self, out + (t0 &* R &+ r0 &+ rj), R, m, min(gemmRows, n &- rj), panel + j &* gemmDepth &* gemmRows &* 4, xb,
                            ku, u0 > 0)
                    }
                }
                u0 &+= ku
            }
            r0 &+= n
        }
    }
}

/// Rows r0 ..< r0 + n, units u0 ..< u0 + ku of the weights as micro-panels: panel j holds rows NR·j … NR·j + NR − 1
/// unit by unit (`gemmDepth` × NR units apart; rows past n are 0), through 8-row staging and 8 × 8 transposes.
@inline(__always)
private func packWeights<K: GEMMKernel>(
    _ panel: UnsafeMutableRawPointer, _ kernel: K, _ r0: Int, _ n: Int, _ u0: Int, _ ku: Int, _ C: Int,
    _ staging: UnsafeMutableRawPointer
) {
    let from = u0 &* K.columnsPerUnit, count = min(ku &* K.columnsPerUnit, C &- from)
    let rowBytes = gemmDepth &* 4, k8 = ku & ~7
    for first in stride(from: 0, to: (n &+ gemmRows &- 1) / gemmRows &* gemmRows, by: 8) {
        for i in 0..<8 {
            let row = staging + i &* rowBytes
            if first &+ i < n {
                kernel.packRow(r0 &+ first &+ i, from: from, count: count, into: row)
            } else {
                row.initializeMemory(as: UInt32.self, repeating: 0, count: ku)
            }
        }
        let dst = panel + (first / gemmRows &* gemmDepth &* gemmRows &+ first % gemmRows) &* 4
        var k = 0
        while k < k8 {
            transpose8x8(staging + k &* 4, rowBytes, dst + k &* gemmRows &* 4, gemmRows &* 4)
            k &+= 8
        }
        while k < ku {
            for i in 0..<8 {
                dst.storeBytes(
                    of: staging.load(fromByteOffset: i &* rowBytes &+ k &* 4, as: UInt32.self), toByteOffset: (k &* gemmRows &+ i) &* 4,
                    as: UInt32.self)
            }
            k &+= 1
        }
    }
}

/// The 4-byte unit at dst + j · dstStride + 4i = the one at src + i · srcStride + 4j, for i, j in 0..<8 (strides
/// in bytes; bits moved as they are).
@inline(__always)
private func transpose8x8(_ src: UnsafeRawPointer, _ srcStride: Int, _ dst: UnsafeMutableRawPointer, _ dstStride: Int) {
    #if INTERNKIT_FMA
        @inline(__always) func row(_ i: Int) -> __m256 { src.loadUnaligned(fromByteOffset: i &* srcStride, as: __m256.self) }
        @inline(__always) func pairs(_ a: __m256, _ b: __m256, high: Bool) -> SIMD8<Float> {
            let (a, b) = (_mm256_castps_pd(a), _mm256_castps_pd(b))
            return unsafeBitCast(high ? _mm256_unpackhi_pd(a, b) : _mm256_unpacklo_pd(a, b), to: SIMD8<Float>.self)
        }
        @inline(__always) func put(_ j: Int, _ low: SIMD4<Float>, _ high: SIMD4<Float>) {
            dst.storeBytes(of: SIMD8(lowHalf: low, highHalf: high), toByteOffset: j &* dstStride, as: SIMD8<Float>.self)
        }
        let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3), r4 = row(4), r5 = row(5), r6 = row(6), r7 = row(7)
        // Within each 128-bit half: (r0 r1) and (r2 r3) interleaved, then pairs of pairs: columns j and j + 4.
        let t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1)
        let t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3)
        let t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5)
        let t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7)
        let s0 = pairs(t0, t2, high: false), s1 = pairs(t0, t2, high: true)
        let s2 = pairs(t1, t3, high: false), s3 = pairs(t1, t3, high: true)
        let s4 = pairs(t4, t6, high: false), s5 = pairs(t4, t6, high: true)
        let s6 = pairs(t5, t7, high: false), s7 = pairs(t5, t7, high: true)
        put(0, s0.lowHalf, s4.lowHalf)
        put(1, s1.lowHalf, s5.lowHalf)
        put(2, s2.lowHalf, s6.lowHalf)
        put(3, s3.lowHalf, s7.lowHalf)
        put(4, s0.highHalf, s4.highHalf)
        put(5, s1.highHalf, s5.highHalf)
        put(6, s2.highHalf, s6.highHalf)
        put(7, s3.highHalf, s7.highHalf)
    #else
        for j in 0..<8 {
            for i in 0..<8 {
                dst.storeBytes(
                    of: src.load(fromByteOffset: i &* srcStride &+ j &* 4, as: UInt32.self), toByteOffset: j &* dstStride &+ i &* 4,
                    as: UInt32.self)
            }
        }
    #endif
}

// MARK: - Scratch memory

/// Reusable buffers for the per-call packing: freshly allocated pages cost a page fault and the kernel's
/// zeroing at first touch (`clear_page_erms`, 7% of internlm2-1_8b prefill in `perf` on AMD Zen 4 when every
/// call allocated them; reusing them took it from 54.7 to 59.0 t/s), so buffers are kept for the next call:
/// at most `kept` (a call holds one per worker and two more), 64-byte aligned. The process keeps what its
/// largest calls needed (a chunk's activations, T × C floats, twice; 16 MiB for 256 tokens of 8192 columns).
final class ScratchBuffers: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
    private let kept = 2 * ProcessInfo.processInfo.activeProcessorCount + 4

    /// Runs `body` with at least `bytes` bytes of scratch memory (uninitialized).
    func with<Result>(bytes: Int, _ body: (UnsafeMutableRawPointer) -> Result) -> Result {
        let buffer = take(bytes)
        defer { give(buffer) }
        return body(buffer.pointer)
    }

    private func take(_ bytes: Int) -> (pointer: UnsafeMutableRawPointer, bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        // The smallest buffer that fits.
        if let i = free.indices.lazy.filter({ self.free[$0].bytes >= bytes }).min(by: { self.free[$0].bytes < self.free[$1].bytes }) {
            return free.remove(at: i)
        }
        return (UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64), max(bytes, 64))
    }

    private func give(_ buffer: (pointer: UnsafeMutableRawPointer, bytes: Int)) {
        lock.lock()
        defer { lock.unlock() }
        free.append(buffer)
        if free.count > kept, let i = free.indices.min(by: { free[$0].bytes < free[$1].bytes }) {
            free.remove(at: i).pointer.deallocate()
        }
    }
}

let scratch = ScratchBuffers()

// MARK: - Micro-kernels

/// m tokens (≤ MR) of a token block × `nr` rows (≤ NR) of a micro-panel; a micro-panel short of NR rows goes
/// through a full-width tile on the stack.
@inline(__always)
private func microTile<K: GEMMKernel>(
    _: K.Type, _ o: UnsafeMutablePointer<Float>, _ R: Int, _ m: Int, _ nr: Int, _ p: UnsafeRawPointer, _ x: UnsafeRawPointer,
    _ units: Int, _ accumulate: Bool
) {
    if nr == gemmRows { return tokenGroups(K.self, o, R, m, p, x, units, accumulate) }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: gemmTokens * gemmRows) { buffer in
        let tile = buffer.baseAddress!
        tile.update(repeating: 0, count: gemmTokens * gemmRows)
        if accumulate {
            for t in 0..<m { (tile + t &* gemmRows).update(from: o + t &* R, count: nr) }
        }
        tokenGroups(K.self, tile, gemmRows, m, p, x, units, accumulate)
        for t in 0..<m { (o + t &* R).update(from: tile + t &* gemmRows, count: nr) }
    }
}

/// m tokens × NR rows: the MR-token kernel for a whole block, else groups of 4 and single tokens (each output's
/// arithmetic is the same in all three).
@inline(__always)
private func tokenGroups<K: GEMMKernel>(
    _: K.Type, _ o: UnsafeMutablePointer<Float>, _ ldo: Int, _ m: Int, _ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ units: Int,
    _ accumulate: Bool
) {
    if m == gemmTokens {
        #if INTERNKIT_AVX512
            return kernel12(K.Ops.self, o, ldo, p, x, units, accumulate)
        #else
            return kernel6(K.Ops.self, o, ldo, p, x, units, accumulate)
        #endif
    }
    var t = 0
    while t &+ 4 <= m {
        kernel4(K.Ops.self, o + t &* ldo, ldo, p, x + t &* 4, units, accumulate)
        t &+= 4
    }
    while t < m {
        kernel1(K.Ops.self, o + t &* ldo, p, x + t &* 4, units, accumulate)
        t &+= 1
    }
}

@inline(__always)
func load(_ o: UnsafeMutablePointer<Float>, _ offset: Int) -> FloatVector {
    UnsafeRawPointer(o + offset).loadUnaligned(as: FloatVector.self)
}

@inline(__always)
func store(_ o: UnsafeMutablePointer<Float>, _ offset: Int, _ v: FloatVector) {
    UnsafeMutableRawPointer(o + offset).storeBytes(of: v, as: FloatVector.self)
}

#if INTERNKIT_AVX512
    /// 12 tokens (x: units, MR apart) × 32 rows (p: units, NR apart) over `units` units, onto `o` (f32, row-major,
    /// stride ldo) when `accumulate`, else from zero.
    @inline(__always)
    private func kernel12<Ops: GEMMUnitOps>(
        _: Ops.Type, _ o: UnsafeMutablePointer<Float>, _ ldo: Int, _ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ units: Int,
        _ accumulate: Bool
    ) {
        let w = FloatVector.scalarCount
        var a0 = FloatVector(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0
        var a4 = a0, b4 = a0, a5 = a0, b5 = a0, a6 = a0, b6 = a0, a7 = a0, b7 = a0
        var a8 = a0, b8 = a0, a9 = a0, b9 = a0, a10 = a0, b10 = a0, a11 = a0, b11 = a0
        if accumulate {
            (a0, b0) = (load(o, 0), load(o, w))
            (a1, b1) = (load(o, ldo), load(o, ldo &+ w))
            (a2, b2) = (load(o, 2 &* ldo), load(o, 2 &* ldo &+ w))
            (a3, b3) = (load(o, 3 &* ldo), load(o, 3 &* ldo &+ w))
            (a4, b4) = (load(o, 4 &* ldo), load(o, 4 &* ldo &+ w))
            (a5, b5) = (load(o, 5 &* ldo), load(o, 5 &* ldo &+ w))
            (a6, b6) = (load(o, 6 &* ldo), load(o, 6 &* ldo &+ w))
            (a7, b7) = (load(o, 7 &* ldo), load(o, 7 &* ldo &+ w))
            (a8, b8) = (load(o, 8 &* ldo), load(o, 8 &* ldo &+ w))
            (a9, b9) = (load(o, 9 &* ldo), load(o, 9 &* ldo &+ w))
            (a10, b10) = (load(o, 10 &* ldo), load(o, 10 &* ldo &+ w))
            (a11, b11) = (load(o, 11 &* ldo), load(o, 11 &* ldo &+ w))
        }
        var pk = p, xk = x
        for _ in 0..<units {
            let v = Ops.weights(pk, byteOffset: 0), u = Ops.weights(pk, byteOffset: w &* 4)
            var s = Ops.broadcast(xk, 0)
            a0 = Ops.madd(a0, v, s)
            b0 = Ops.madd(b0, u, s)
            s = Ops.broadcast(xk, 1)
            a1 = Ops.madd(a1, v, s)
            b1 = Ops.madd(b1, u, s)
            s = Ops.broadcast(xk, 2)
            a2 = Ops.madd(a2, v, s)
            b2 = Ops.madd(b2, u, s)
            s = Ops.broadcast(xk, 3)
            a3 = Ops.madd(a3, v, s)
            b3 = Ops.madd(b3, u, s)
            s = Ops.broadcast(xk, 4)
            a4 = Ops.madd(a4, v, s)
            b4 = Ops.madd(b4, u, s)
            s = Ops.broadcast(xk, 5)
            a5 = Ops.madd(a5, v, s)
            b5 = Ops.madd(b5, u, s)
            s = Ops.broadcast(xk, 6)
            a6 = Ops.madd(a6, v, s)
            b6 = Ops.madd(b6, u, s)
            s = Ops.broadcast(xk, 7)
            a7 = Ops.madd(a7, v, s)
            b7 = Ops.madd(b7, u, s)
            s = Ops.broadcast(xk, 8)
            a8 = Ops.madd(a8, v, s)
            b8 = Ops.madd(b8, u, s)
            s = Ops.broadcast(xk, 9)
            a9 = Ops.madd(a9, v, s)
            b9 = Ops.madd(b9, u, s)
            s = Ops.broadcast(xk, 10)
            a10 = Ops.madd(a10, v, s)
            b10 = Ops.madd(b10, u, s)
            s = Ops.broadcast(xk, 11)
            a11 = Ops.madd(a11, v, s)
            b11 = Ops.madd(b11, u, s)
            pk += gemmRows &* 4
            xk += 48
        }
        store(o, 0, a0)
        store(o, w, b0)
        store(o, ldo, a1)
        store(o, ldo &+ w, b1)
        store(o, 2 &* ldo, a2)
        store(o, 2 &* ldo &+ w, b2)
        store(o, 3 &* ldo, a3)
        store(o, 3 &* ldo &+ w, b3)
        store(o, 4 &* ldo, a4)
        store(o, 4 &* ldo &+ w, b4)
        store(o, 5 &* ldo, a5)
        store(o, 5 &* ldo &+ w, b5)
        store(o, 6 &* ldo, a6)
        store(o, 6 &* ldo &+ w, b6)
        store(o, 7 &* ldo, a7)
        store(o, 7 &* ldo &+ w, b7)
        store(o, 8 &* ldo, a8)
        store(o, 8 &* ldo &+ w, b8)
        store(o, 9 &* ldo, a9)
        store(o, 9 &* ldo &+ w, b9)
        store(o, 10 &* ldo, a10)
        store(o, 10 &* ldo &+ w, b10)
        store(o, 11 &* ldo, a11)
        store(o, 11 &* ldo &+ w, b11)
    }
#else
    /// 6 tokens × 16 rows (AVX2 and portable: two SIMD8 vectors), as `kernel12`.
    @inline(__always)
    private func kernel6<Ops: GEMMUnitOps>(
        _: Ops.Type, _ o: UnsafeMutablePointer<Float>, _ ldo: Int, _ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ units: Int,
        _ accumulate: Bool
    ) {
        let w = FloatVector.scalarCount
        var a0 = FloatVector(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0
        var a3 = a0, b3 = a0, a4 = a0, b4 = a0, a5 = a0, b5 = a0
        if accumulate {
            (a0, b0) = (load(o, 0), load(o, w))
            (a1, b1) = (load(o, ldo), load(o, ldo &+ w))
            (a2, b2) = (load(o, 2 &* ldo), load(o, 2 &* ldo &+ w))
            (a3, b3) = (load(o, 3 &* ldo), load(o, 3 &* ldo &+ w))
            (a4, b4) = (load(o, 4 &* ldo), load(o, 4 &* ldo &+ w))
            (a5, b5) = (load(o, 5 &* ldo), load(o, 5 &* ldo &+ w))
        }
        var pk = p, xk = x
        for _ in 0..<units {
            let v = Ops.weights(pk, byteOffset: 0), u = Ops.weights(pk, byteOffset: w &* 4)
            var s = Ops.broadcast(xk, 0)
            a0 = Ops.madd(a0, v, s)
            b0 = Ops.madd(b0, u, s)
            s = Ops.broadcast(xk, 1)
            a1 = Ops.madd(a1, v, s)
            b1 = Ops.madd(b1, u, s)
            s = Ops.broadcast(xk, 2)
            a2 = Ops.madd(a2, v, s)
            b2 = Ops.madd(b2, u, s)
            s = Ops.broadcast(xk, 3)
            a3 = Ops.madd(a3, v, s)
            b3 = Ops.madd(b3, u, s)
            s = Ops.broadcast(xk, 4)
            a4 = Ops.madd(a4, v, s)
            b4 = Ops.madd(b4, u, s)
            s = Ops.broadcast(xk, 5)
            a5 = Ops.madd(a5, v, s)
            b5 = Ops.madd(b5, u, s)
            pk += gemmRows &* 4
            xk += 24
        }
        store(o, 0, a0)
        store(o, w, b0)
        store(o, ldo, a1)
        store(o, ldo &+ w, b1)
        store(o, 2 &* ldo, a2)
        store(o, 2 &* ldo &+ w, b2)
        store(o, 3 &* ldo, a3)
        store(o, 3 &* ldo &+ w, b3)
        store(o, 4 &* ldo, a4)
        store(o, 4 &* ldo &+ w, b4)
        store(o, 5 &* ldo, a5)
        store(o, 5 &* ldo &+ w, b5)
    }
#endif

/// 4 tokens × NR rows (the tail of a token block), as `kernel12`.
@inline(__always)
private func kernel4<Ops: GEMMUnitOps>(
    _: Ops.Type, _ o: UnsafeMutablePointer<Float>, _ ldo: Int, _ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ units: Int,
    _ accumulate: Bool
) {
    let w = FloatVector.scalarCount
    var a0 = FloatVector(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0
    if accumulate {
        (a0, b0) = (load(o, 0), load(o, w))
        (a1, b1) = (load(o, ldo), load(o, ldo &+ w))
        (a2, b2) = (load(o, 2 &* ldo), load(o, 2 &* ldo &+ w))
        (a3, b3) = (load(o, 3 &* ldo), load(o, 3 &* ldo &+ w))
    }
    var pk = p, xk = x
    for _ in 0..<units {
        let v = Ops.weights(pk, byteOffset: 0), u = Ops.weights(pk, byteOffset: w &* 4)
        var s = Ops.broadcast(xk, 0)
        a0 = Ops.madd(a0, v, s)
        b0 = Ops.madd(b0, u, s)
        s = Ops.broadcast(xk, 1)
        a1 = Ops.madd(a1, v, s)
        b1 = Ops.madd(b1, u, s)
        s = Ops.broadcast(xk, 2)
        a2 = Ops.madd(a2, v, s)
        b2 = Ops.madd(b2, u, s)
        s = Ops.broadcast(xk, 3)
        a3 = Ops.madd(a3, v, s)
        b3 = Ops.madd(b3, u, s)
        pk += gemmRows &* 4
        xk += gemmTokens &* 4
    }
    store(o, 0, a0)
    store(o, w, b0)
    store(o, ldo, a1)
    store(o, ldo &+ w, b1)
    store(o, 2 &* ldo, a2)
    store(o, 2 &* ldo &+ w, b2)
    store(o, 3 &* ldo, a3)
    store(o, 3 &* ldo &+ w, b3)
}

/// 1 token × NR rows, as `kernel12` (two accumulator chains: only for the last tokens of a call).
@inline(__always)
private func kernel1<Ops: GEMMUnitOps>(
    _: Ops.Type, _ o: UnsafeMutablePointer<Float>, _ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ units: Int, _ accumulate: Bool
) {
    let w = FloatVector.scalarCount
    var a = FloatVector(), b = a
    if accumulate { (a, b) = (load(o, 0), load(o, w)) }
    var pk = p, xk = x
    for _ in 0..<units {
        let s = Ops.broadcast(xk, 0)
        a = Ops.madd(a, Ops.weights(pk, byteOffset: 0), s)
        b = Ops.madd(b, Ops.weights(pk, byteOffset: w &* 4), s)
        pk += gemmRows &* 4
        xk += gemmTokens &* 4
    }
    store(o, 0, a)
    store(o, w, b)
}

// MARK: - Naive twin

/// The reference for `matMulPrefill`'s order: each output one f32 chain of fused multiply-adds over the columns
/// in ascending order, from zero (so the optimized kernel must match it to the bit).
public func matMulPrefillReference(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols) of `type`
    type: WeightType,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int
) {
    for t in 0..<tokens {
        for r in 0..<rows {
            var s: Float = 0
            for c in 0..<cols {
                #if INTERNKIT_FMA || arch(arm64)
                    s = s.addingProduct(weightElement(weight, type: type, index: r * cols + c), input[t * cols + c])
                #else
                    s += weightElement(weight, type: type, index: r * cols + c) * input[t * cols + c]
                #endif
            }
            out[t * rows + r] = s
        }
    }
}
