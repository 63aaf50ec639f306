// Matrix products against weights stored as f32, f16 or bf16: out[t, r] = sum_c W[r, c] * x[t, c], the
// PyTorch `nn.Linear` layout (W is (rows, cols) = (out_features, in_features), row-major).
// Strategy: threaded over output rows (chunks handed out by ThreadPool; every row is independent, so no
// reduction between threads). The accumulators are `FloatVector`s: SIMD16<Float> (one 512-bit register)
// in AVX-512 builds, SIMD8<Float> elsewhere. Calls of T ≥ 4 tokens (a decode batch; prompt chunks take
// `matMulPrefill`, PrefillGEMM.swift) run tiles of 6 (AVX-512) or 3 rows × 4 tokens over panels staged as f32;
// T < 4 runs 4×1 tiles (four independent FMA chains over four weight streams, bound by weight bandwidth)
// and 4×2 tiles for pairs of tokens. Weights are widened
// to f32 in registers (bf16: shift; f16: F16C or integer rebias), never copied outside the staging.
// Reduction order (fixed, independent of T and of the tiling): every output has exactly one FloatVector
// accumulator that adds w·x over the columns in steps of its width in ascending order, then `sum()` of its
// lanes (`laneSum`), then the scalar column tail in ascending order. So a token's result does not depend on how many
// tokens share the call, nor on which tile computed it (batched decode relies on this).
// With INTERNKIT_FMA (x86-64 built for Haswell, see Package.swift) or on arm64 the products are fused
// multiply-adds; on the portable x86-64 path they are a separate multiply and add, since `addingProduct`
// without the FMA feature becomes a libm `fmaf` call per lane.
// Names: T = tokens, R = rows (output features), C = cols (input features).

#if INTERNKIT_FMA
    import _Builtin_intrinsics.intel
#endif

/// How a weight matrix's elements are stored.
public enum WeightType: String, Sendable, CaseIterable {
    case f32, f16, bf16

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        }
    }
}

// MARK: - Element loaders

#if INTERNKIT_AVX512
    /// The products' accumulator: one 512-bit register of f32.
    @usableFromInline typealias FloatVector = SIMD16<Float>
#else
    /// The products' accumulator: one 256-bit register of f32 (two NEON registers on arm64).
    @usableFromInline typealias FloatVector = SIMD8<Float>
#endif

/// Loads weight elements as f32; one conforming type per storage format, so the loops specialize.
@usableFromInline
protocol WeightLoader {
    /// Bytes per element (float formats); quantized loaders override `rowBytes` instead.
    static var stride: Int { get }
    /// Bytes of a row of `cols` elements.
    static func rowBytes(_ cols: Int) -> Int
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float>
    /// `FloatVector.scalarCount` elements (the default: consecutive `load8`s).
    static func loadVector(_ base: UnsafeRawPointer, _ index: Int) -> FloatVector
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float
}

@usableFromInline
enum F32Loader: WeightLoader {
    @usableFromInline static var stride: Int { 4 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD8<Float>.self)
    }
    @inline(__always) @usableFromInline
    static func loadVector(_ base: UnsafeRawPointer, _ index: Int) -> FloatVector {
        base.loadUnaligned(fromByteOffset: index &* 4, as: FloatVector.self)
    }
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        base.loadUnaligned(fromByteOffset: index &* 4, as: Float.self)
    }
}

@usableFromInline
enum BF16Loader: WeightLoader {
    @usableFromInline static var stride: Int { 2 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        // bf16 is the top half of an f32: widen and shift into place. Intrinsics where available (three
        // instructions); else lane by lane, because the generic `SIMD8<UInt32>(truncatingIfNeeded:)` is
        // not specialized and costs a call per vector.
        #if INTERNKIT_FMA
            let h = base.loadUnaligned(fromByteOffset: index &* 2, as: __m128i.self)
            return unsafeBitCast(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16), to: SIMD8<Float>.self)
        #else
            return unsafeBitCast(
                widen(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self)) &<< 16,
                to: SIMD8<Float>.self)
        #endif
    }
    #if INTERNKIT_AVX512
        @inline(__always) @usableFromInline
        static func loadVector(_ base: UnsafeRawPointer, _ index: Int) -> FloatVector {
            let h = base.loadUnaligned(fromByteOffset: index &* 2, as: __m256i.self)
            return unsafeBitCast(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16), to: FloatVector.self)
        }
    #endif
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)) << 16)
    }
}

@usableFromInline
enum F16Loader: WeightLoader {
    @usableFromInline static var stride: Int { 2 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        #if INTERNKIT_FMA
            // F16C (part of the Haswell target).
            return unsafeBitCast(_mm256_cvtph_ps(base.loadUnaligned(fromByteOffset: index &* 2, as: __m128i.self)), to: SIMD8<Float>.self)
        #endif
        // Integer-only f16 → f32 (no F16C needed): move exponent and mantissa into place and rescale by
        // 2^112 (which also handles subnormals); infinities and NaNs get the all-ones exponent back.
        let h = widen(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self))
        let magnitude = (h & 0x7FFF) &<< 13
        var value = unsafeBitCast(magnitude, to: SIMD8<Float>.self) * Float(bitPattern: 0x7780_0000)
        let special = magnitude .>= SIMD8<UInt32>(repeating: 0x0F80_0000)
        value.replace(with: unsafeBitCast(magnitude | 0x7F80_0000, to: SIMD8<Float>.self), where: special)
        return unsafeBitCast(unsafeBitCast(value, to: SIMD8<UInt32>.self) | ((h & 0x8000) &<< 16), to: SIMD8<Float>.self)
    }
    #if INTERNKIT_AVX512
        @inline(__always) @usableFromInline
        static func loadVector(_ base: UnsafeRawPointer, _ index: Int) -> FloatVector {
            unsafeBitCast(_mm512_cvtph_ps(base.loadUnaligned(fromByteOffset: index &* 2, as: __m256i.self)), to: FloatVector.self)
        }
    #endif
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)))
    }
}

extension WeightLoader {
    @inline(__always) @usableFromInline
    static func rowBytes(_ cols: Int) -> Int { cols &* stride }

    @inline(__always) @usableFromInline
    static func loadVector(_ base: UnsafeRawPointer, _ index: Int) -> FloatVector {
        #if INTERNKIT_AVX512
            SIMD16(lowHalf: load8(base, index), highHalf: load8(base, index &+ 8))
        #else
            load8(base, index)
        #endif
    }
}

@inline(__always) @usableFromInline
func widen(_ v: SIMD8<UInt16>) -> SIMD8<UInt32> {
    SIMD8<UInt32>(
        UInt32(v[0]), UInt32(v[1]), UInt32(v[2]), UInt32(v[3]),
        UInt32(v[4]), UInt32(v[5]), UInt32(v[6]), UInt32(v[7]))
}

/// Element `index` of a weight buffer as f32 (slow path for gathers and references).
public func weightElement(_ base: UnsafeRawPointer, type: WeightType, index: Int) -> Float {
    switch type {
    case .f32: F32Loader.load1(base, index)
    case .f16: F16Loader.load1(base, index)
    case .bf16: BF16Loader.load1(base, index)
    }
}

/// Converts `count` elements starting at element `offset` of a weight buffer to f32 (an embedding row).
public func convertToFloat(
    _ out: UnsafeMutablePointer<Float>,  // (count)
    from base: UnsafeRawPointer, type: WeightType, offset: Int, count: Int
) {
    switch type {
    case .f32: convertRow(F32Loader.self, out, base, offset, count)
    case .f16: convertRow(F16Loader.self, out, base, offset, count)
    case .bf16: convertRow(BF16Loader.self, out, base, offset, count)
    }
}

/// `count` elements of `base` from element `offset` as f32 (an embedding row, a block of the prefill GEMM).
@inline(__always)
func convertRow<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ base: UnsafeRawPointer, _ offset: Int, _ count: Int
) {
    var c = 0
    while c + 8 <= count {
        UnsafeMutableRawPointer(out + c).storeBytes(of: L.load8(base, offset + c), as: SIMD8<Float>.self)
        c += 8
    }
    while c < count {
        out[c] = L.load1(base, offset + c)
        c += 1
    }
}

// MARK: - Optimized

/// out (T, R) = x (T, C) · Wᵀ, with W (R, C) stored as `type`; threaded over rows when `pool` is given.
public func matMul(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols) of `type`
    type: WeightType,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    floatProduct(oneRow: false, out, weight, type, input, tokens, rows, cols, pool)
}

/// out (T, R) = x (T, C) · Wᵀ for decode (one token per sequence, T the batch): rows of
/// `decodeOneRowBytes` are read one at a time with four accumulators, a single weight stream per thread
/// that the hardware prefetchers follow; shorter and longer rows take `matMul`'s 4-row tiles. Measured on
/// AMD Zen 4, 2 threads, alternating runs: internlm2-1_8b bf16 (4 KiB rows but w2's) 7.33–7.77 → 8.02–8.40
/// t/s; the small shape (2 KiB rows) was slower this way (median 60 vs 70 t/s), and so were 16 KiB rows in
/// `prefetch-bench 8192` (9–11 vs 16–19 GB/s). Exact f32 FMAs as `matMul`, in
/// another order (four partial sums per output), so decode and prefill results differ in rounding;
/// `WeightMatrix` picks by phase, never by batch size, and every token runs the same code whatever T.
public func matMulDecode(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols) of `type`
    type: WeightType,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    guard decodeOneRowBytes.contains(cols * type.byteSize) else {
        return matMul(out, weight: weight, type: type, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
    }
    floatProduct(oneRow: true, out, weight, type, input, tokens, rows, cols, pool)
}

/// `decodeRows` (one row at a time) or `matMulRows` (tiles) with `type`'s loader, threaded over rows: chunks
/// of 12 rows for the tiles (prefill tiles are 6 or 3 rows, decode tiles 4: no row left to the scalar tail).
private func floatProduct(
    oneRow: Bool, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ type: WeightType,
    _ input: UnsafePointer<Float>, _ tokens: Int, _ rows: Int, _ cols: Int, _ pool: ThreadPool?
) {
    func run<L: WeightLoader>(_: L.Type, _ range: Range<Int>) {
        if oneRow {
            decodeRows(L.self, out, weight, input, tokens, rows, cols, range)
        } else {
            matMulRows(L.self, out, weight, input, tokens, rows, cols, range)
        }
    }
    let body = { (range: Range<Int>, _: Int) in
        switch type {
        case .f32: run(F32Loader.self, range)
        case .f16: run(F16Loader.self, range)
        case .bf16: run(BF16Loader.self, range)
        }
    }
    if let pool {
        pool.parallelFor(rows, granularity: oneRow ? 4 : 12, body)
    } else {
        body(0..<rows, 0)
    }
}

/// Row lengths (bytes) of `matMulDecode`'s one-row path, for every float type (bf16: 2048 to 4096 weights;
/// measured with bf16 only).
let decodeOneRowBytes = 4096...8192

private func decodeRows<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: UnsafePointer<Float>,
    _ T: Int, _ R: Int, _ C: Int, _ rows: Range<Int>
) {
    let rowBytes = L.rowBytes(C), width = FloatVector.scalarCount, step = 4 &* width
    let C4 = C &- C % step, CV = C & ~(width &- 1)
    for r in rows {
        let w = weight + r &* rowBytes
        for t in 0..<T {
            let xt = x + t &* C
            var a0 = FloatVector(), a1 = a0, a2 = a0, a3 = a0
            var c = 0
            while c < C4 {
                a0 = madd(a0, L.loadVector(w, c), loadVector(xt, c))
                a1 = madd(a1, L.loadVector(w, c &+ width), loadVector(xt, c &+ width))
                a2 = madd(a2, L.loadVector(w, c &+ 2 &* width), loadVector(xt, c &+ 2 &* width))
                a3 = madd(a3, L.loadVector(w, c &+ 3 &* width), loadVector(xt, c &+ 3 &* width))
                c &+= step
            }
            var a = (a0 + a1) + (a2 + a3)
            while c < CV {
                a = madd(a, L.loadVector(w, c), loadVector(xt, c))
                c &+= width
            }
            out[t &* R &+ r] = tail(L.self, laneSum(a), w, xt, CV, C)
        }
    }
}

func matMulRows<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: UnsafePointer<Float>,
    _ T: Int, _ R: Int, _ C: Int, _ rows: Range<Int>
) {
    let rowBytes = L.rowBytes(C)
    var r = rows.lowerBound
    if T >= 4 {
        // Many tokens (a decode batch): tiles of `prefillTileRows` rows × 4 tokens (6 × 4 in 32 AVX-512 registers, 3 × 4 in 16 AVX2
        // ones: enough FMA chains to hide the FMA latency), blocked for the caches: a panel of rows (about
        // `prefillPanelBytes` as f32) is staged once, then every block of tokens (about `prefillTokenBytes` of
        // activations) runs through all of the panel's tiles, so the weights are read from memory once per
        // call and each token block is reused from L2 across the panel. Converted formats are widened to f32
        // by the same `load8` the direct path uses (values and reduction order identical); f32 weights are
        // read in place. The buffer is allocated once per call and thread, not per token.
        let staged = L.self != F32Loader.self
        let panelRows = max(1, min(prefillPanelBytes / (C &* 4), rows.count) / prefillTileRows) &* prefillTileRows
        let buffer: UnsafeMutablePointer<Float>? = staged ? .allocate(capacity: panelRows &* C) : nil
        defer { buffer?.deallocate() }
        while r &+ prefillTileRows <= rows.upperBound {
            let n = min(panelRows, (rows.upperBound &- r) / prefillTileRows &* prefillTileRows)
            let w = weight + r &* rowBytes
            let panel: UnsafeRawPointer, panelRowBytes: Int
            if let buffer {
                let C8 = C & ~7
                for i in 0..<n {
                    let src = w + i &* rowBytes, dst = buffer + i &* C
                    var c = 0
                    while c < C8 {
                        store8(dst, c, L.load8(src, c))
                        c &+= 8
                    }
                    while c < C {
                        dst[c] = L.load1(src, c)
                        c &+= 1
                    }
                }
                (panel, panelRowBytes) = (UnsafeRawPointer(buffer), C &* 4)
            } else {
                (panel, panelRowBytes) = (w, rowBytes)
            }
            if staged {
                prefillPanel(F32Loader.self, out + r, R, panel, panelRowBytes, n, x, T, C)
            } else {
                prefillPanel(L.self, out + r, R, panel, panelRowBytes, n, x, T, C)
            }
            r &+= n
        }
    } else {
        while r &+ 4 <= rows.upperBound {
            tiles(L.self, out + r, R, weight + r &* rowBytes, rowBytes, x, T, C)
            r &+= 4
        }
    }
    while r < rows.upperBound {
        let w = weight + r &* rowBytes
        for t in 0..<T { out[t &* R &+ r] = dot1(L.self, w, x + (t &* C), C) }
        r &+= 1
    }
}

#if INTERNKIT_AVX512
    /// Rows per prefill tile: 6 × 4 tokens = 24 accumulators + 6 weight vectors + 1 activation vector of the
    /// 32 AVX-512 registers. Each step loads 4 activation vectors (from L2 for a long chunk) per 24 FMAs.
    let prefillTileRows = 6
#else
    /// Rows per prefill tile: 3 × 4 tokens = 12 accumulators of the 16 AVX2 registers.
    let prefillTileRows = 3
#endif

/// Bytes of weights (as f32) staged at once in prefill, and of activations per token block: together
/// within the 2 MiB L2 of a current server core.
let prefillPanelBytes = 1 << 20
let prefillTokenBytes = 1 << 19

/// A panel of `n` rows (a multiple of `prefillTileRows`) against all T tokens: every block of tokens (about
/// `prefillTokenBytes` of activations, reused from L2) runs through all of the panel's tiles.
@inline(__always)
func prefillPanel<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ R: Int, _ panel: UnsafeRawPointer, _ panelRowBytes: Int, _ n: Int,
    _ x: UnsafePointer<Float>, _ T: Int, _ C: Int
) {
    let tokenBlock = max(4, (prefillTokenBytes / (C &* 4)) & ~3)
    var t = 0
    while t < T {
        let count = min(tokenBlock, T &- t)
        for tile in stride(from: 0, to: n, by: prefillTileRows) {
            prefillTiles(L.self, out + (t &* R &+ tile), R, panel + tile &* panelRowBytes, panelRowBytes, x + t &* C, count, C)
        }
        t &+= count
    }
}

/// One prefill tile (`prefillTileRows` rows) against all T tokens: blocks of 4 tokens, then single tokens.
@inline(__always)
private func prefillTiles<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ R: Int, _ w: UnsafeRawPointer, _ rowBytes: Int,
    _ x: UnsafePointer<Float>, _ T: Int, _ C: Int
) {
    var t = 0
    while t &+ 4 <= T {
        #if INTERNKIT_AVX512
            tile6x4(L.self, out + t &* R, R, w, rowBytes, x + (t &* C), C)
        #else
            tile3x4(L.self, out + t &* R, R, w, rowBytes, x + (t &* C), C)
        #endif
        t &+= 4
    }
    while t < T {
        let xt = x + (t &* C)
        for i in 0..<prefillTileRows { out[t &* R &+ i] = dot1(L.self, w + i &* rowBytes, xt, C) }
        t &+= 1
    }
}

#if INTERNKIT_AVX512
    /// Rows w … w + 5·rowBytes against tokens x … x + 3C: one accumulator per output.
    @inline(__always)
    private func tile6x4<L: WeightLoader>(
        _: L.Type, _ out: UnsafeMutablePointer<Float>, _ R: Int, _ w: UnsafeRawPointer, _ rowBytes: Int,
        _ x: UnsafePointer<Float>, _ C: Int
    ) {
        let CV = C & ~(FloatVector.scalarCount &- 1)
        let w0 = w, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes, w4 = w3 + rowBytes, w5 = w4 + rowBytes
        let x0 = x, x1 = x + C, x2 = x1 + C, x3 = x2 + C
        var a00 = FloatVector(), a10 = a00, a20 = a00, a30 = a00, a40 = a00, a50 = a00
        var a01 = a00, a11 = a00, a21 = a00, a31 = a00, a41 = a00, a51 = a00
        var a02 = a00, a12 = a00, a22 = a00, a32 = a00, a42 = a00, a52 = a00
        var a03 = a00, a13 = a00, a23 = a00, a33 = a00, a43 = a00, a53 = a00
        var c = 0
        while c < CV {
            let v0 = L.loadVector(w0, c), v1 = L.loadVector(w1, c), v2 = L.loadVector(w2, c)
            let v3 = L.loadVector(w3, c), v4 = L.loadVector(w4, c), v5 = L.loadVector(w5, c)
            var xv = loadVector(x0, c)
            a00 = madd(a00, v0, xv)
            a10 = madd(a10, v1, xv)
            a20 = madd(a20, v2, xv)
            a30 = madd(a30, v3, xv)
            a40 = madd(a40, v4, xv)
            a50 = madd(a50, v5, xv)
            xv = loadVector(x1, c)
            a01 = madd(a01, v0, xv)
            a11 = madd(a11, v1, xv)
            a21 = madd(a21, v2, xv)
            a31 = madd(a31, v3, xv)
            a41 = madd(a41, v4, xv)
            a51 = madd(a51, v5, xv)
            xv = loadVector(x2, c)
            a02 = madd(a02, v0, xv)
            a12 = madd(a12, v1, xv)
            a22 = madd(a22, v2, xv)
            a32 = madd(a32, v3, xv)
            a42 = madd(a42, v4, xv)
            a52 = madd(a52, v5, xv)
            xv = loadVector(x3, c)
            a03 = madd(a03, v0, xv)
            a13 = madd(a13, v1, xv)
            a23 = madd(a23, v2, xv)
            a33 = madd(a33, v3, xv)
            a43 = madd(a43, v4, xv)
            a53 = madd(a53, v5, xv)
            c &+= FloatVector.scalarCount
        }
        let rowsOfTile = (w0, w1, w2, w3, w4, w5)
        func store(_ t: Int, _ x: UnsafePointer<Float>, _ a: (FloatVector, FloatVector, FloatVector, FloatVector, FloatVector, FloatVector)) {
            let o = out + t &* R
            o[0] = tail(L.self, laneSum(a.0), rowsOfTile.0, x, CV, C)
            o[1] = tail(L.self, laneSum(a.1), rowsOfTile.1, x, CV, C)
            o[2] = tail(L.self, laneSum(a.2), rowsOfTile.2, x, CV, C)
            o[3] = tail(L.self, laneSum(a.3), rowsOfTile.3, x, CV, C)
            o[4] = tail(L.self, laneSum(a.4), rowsOfTile.4, x, CV, C)
            o[5] = tail(L.self, laneSum(a.5), rowsOfTile.5, x, CV, C)
        }
        store(0, x0, (a00, a10, a20, a30, a40, a50))
        store(1, x1, (a01, a11, a21, a31, a41, a51))
        store(2, x2, (a02, a12, a22, a32, a42, a52))
        store(3, x3, (a03, a13, a23, a33, a43, a53))
    }
#endif

#if !INTERNKIT_AVX512
    /// Rows w, w + rowBytes, w + 2·rowBytes against tokens x … x + 3C: one accumulator per output.
    @inline(__always)
    private func tile3x4<L: WeightLoader>(
        _: L.Type, _ out: UnsafeMutablePointer<Float>, _ R: Int, _ w: UnsafeRawPointer, _ rowBytes: Int,
        _ x: UnsafePointer<Float>, _ C: Int
    ) {
        let CV = C & ~(FloatVector.scalarCount &- 1)
        let w0 = w, w1 = w0 + rowBytes, w2 = w1 + rowBytes
        let x0 = x, x1 = x + C, x2 = x1 + C, x3 = x2 + C
        var a00 = FloatVector(), a10 = a00, a20 = a00, a01 = a00, a11 = a00, a21 = a00
        var a02 = a00, a12 = a00, a22 = a00, a03 = a00, a13 = a00, a23 = a00
        var c = 0
        while c < CV {
            let v0 = L.loadVector(w0, c), v1 = L.loadVector(w1, c), v2 = L.loadVector(w2, c)
            var xv = loadVector(x0, c)
            a00 = madd(a00, v0, xv)
            a10 = madd(a10, v1, xv)
            a20 = madd(a20, v2, xv)
            xv = loadVector(x1, c)
            a01 = madd(a01, v0, xv)
            a11 = madd(a11, v1, xv)
            a21 = madd(a21, v2, xv)
            xv = loadVector(x2, c)
            a02 = madd(a02, v0, xv)
            a12 = madd(a12, v1, xv)
            a22 = madd(a22, v2, xv)
            xv = loadVector(x3, c)
            a03 = madd(a03, v0, xv)
            a13 = madd(a13, v1, xv)
            a23 = madd(a23, v2, xv)
            c &+= FloatVector.scalarCount
        }
        out[0] = tail(L.self, laneSum(a00), w0, x0, CV, C)
        out[1] = tail(L.self, laneSum(a10), w1, x0, CV, C)
        out[2] = tail(L.self, laneSum(a20), w2, x0, CV, C)
        out[R] = tail(L.self, laneSum(a01), w0, x1, CV, C)
        out[R &+ 1] = tail(L.self, laneSum(a11), w1, x1, CV, C)
        out[R &+ 2] = tail(L.self, laneSum(a21), w2, x1, CV, C)
        out[2 &* R] = tail(L.self, laneSum(a02), w0, x2, CV, C)
        out[2 &* R &+ 1] = tail(L.self, laneSum(a12), w1, x2, CV, C)
        out[2 &* R &+ 2] = tail(L.self, laneSum(a22), w2, x2, CV, C)
        out[3 &* R] = tail(L.self, laneSum(a03), w0, x3, CV, C)
        out[3 &* R &+ 1] = tail(L.self, laneSum(a13), w1, x3, CV, C)
        out[3 &* R &+ 2] = tail(L.self, laneSum(a23), w2, x3, CV, C)
    }
#endif

/// One 4-row tile against all T tokens: token pairs, then a tail token.
@inline(__always)
private func tiles<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ R: Int, _ w: UnsafeRawPointer, _ rowBytes: Int,
    _ x: UnsafePointer<Float>, _ T: Int, _ C: Int
) {
    var t = 0
    while t &+ 2 <= T {
        tile4x2(L.self, out + t &* R, R, w, rowBytes, x + (t &* C), C)
        t &+= 2
    }
    if t < T { tile4x1(L.self, out + t &* R, w, rowBytes, x + (t &* C), C) }
}

/// acc + a·b: fused where the target has FMA (see the header).
@inline(__always) @usableFromInline
func madd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    #if INTERNKIT_FMA || arch(arm64)
        acc.addingProduct(a, b)
    #else
        acc + a * b
    #endif
}

#if INTERNKIT_AVX512
    /// acc + a·b on 512-bit vectors.
    @inline(__always) @usableFromInline
    func madd(_ acc: SIMD16<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        acc.addingProduct(a, b)
    }
#endif

/// The scalar tail of one output: `s` plus w[c]·x[c] for c in `from..<C`, in ascending order.
@inline(__always)
private func tail<L: WeightLoader>(_: L.Type, _ s: Float, _ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ from: Int, _ C: Int) -> Float {
    var s = s
    var c = from
    while c < C {
        s += L.load1(w, c) * x[c]
        c &+= 1
    }
    return s
}

/// One output: row `w` · token `x`.
@inline(__always)
private func dot1<L: WeightLoader>(_: L.Type, _ w: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ C: Int) -> Float {
    let CV = C & ~(FloatVector.scalarCount &- 1)
    var a = FloatVector()
    var c = 0
    while c < CV {
        a = madd(a, L.loadVector(w, c), loadVector(x, c))
        c &+= FloatVector.scalarCount
    }
    return tail(L.self, laneSum(a), w, x, CV, C)
}

/// Four rows (w, w + rowBytes, …) · one token; writes out[0..<4].
@inline(__always)
private func tile4x1<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ w: UnsafeRawPointer, _ rowBytes: Int, _ x: UnsafePointer<Float>, _ C: Int
) {
    let CV = C & ~(FloatVector.scalarCount &- 1)
    let w0 = w, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes
    // The next tile's four rows, as many bytes ahead as this tile has read (Prefetch.swift); not for long rows.
    // (A 1-thread A/B on internlm2-1_8b bf16 decode, 4 alternating runs each: 3.72–4.80 → 4.19–4.76 t/s.)
    let next = w0 + 4 &* rowBytes, bytesPerStep = 4 &* FloatVector.scalarCount &* L.stride
    let prefetching = rowBytes <= tilePrefetchMaxRowBytes
    var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
    var c = 0
    while c < CV {
        if prefetching { prefetch(next + 4 &* c &* L.stride, bytes: bytesPerStep) }
        let xv = loadVector(x, c)
        a0 = madd(a0, L.loadVector(w0, c), xv)
        a1 = madd(a1, L.loadVector(w1, c), xv)
        a2 = madd(a2, L.loadVector(w2, c), xv)
        a3 = madd(a3, L.loadVector(w3, c), xv)
        c &+= FloatVector.scalarCount
    }
    out[0] = tail(L.self, laneSum(a0), w0, x, CV, C)
    out[1] = tail(L.self, laneSum(a1), w1, x, CV, C)
    out[2] = tail(L.self, laneSum(a2), w2, x, CV, C)
    out[3] = tail(L.self, laneSum(a3), w3, x, CV, C)
}

/// Four rows · two tokens (x, x + C); writes out[0..<4] and out[R..<R + 4].
@inline(__always)
private func tile4x2<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ R: Int, _ w: UnsafeRawPointer, _ rowBytes: Int,
    _ x: UnsafePointer<Float>, _ C: Int
) {
    let CV = C & ~(FloatVector.scalarCount &- 1)
    let w0 = w, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes
    let x0 = x, x1 = x + C
    var a00 = FloatVector(), a10 = FloatVector(), a20 = FloatVector(), a30 = FloatVector()
    var a01 = FloatVector(), a11 = FloatVector(), a21 = FloatVector(), a31 = FloatVector()
    let next = w0 + 4 &* rowBytes, bytesPerStep = 4 &* FloatVector.scalarCount &* L.stride
    let prefetching = rowBytes <= tilePrefetchMaxRowBytes
    var c = 0
    while c < CV {
        if prefetching { prefetch(next + 4 &* c &* L.stride, bytes: bytesPerStep) }
        let x0v = loadVector(x0, c), x1v = loadVector(x1, c)
        let v0 = L.loadVector(w0, c), v1 = L.loadVector(w1, c), v2 = L.loadVector(w2, c), v3 = L.loadVector(w3, c)
        a00 = madd(a00, v0, x0v)
        a10 = madd(a10, v1, x0v)
        a20 = madd(a20, v2, x0v)
        a30 = madd(a30, v3, x0v)
        a01 = madd(a01, v0, x1v)
        a11 = madd(a11, v1, x1v)
        a21 = madd(a21, v2, x1v)
        a31 = madd(a31, v3, x1v)
        c &+= FloatVector.scalarCount
    }
    out[0] = tail(L.self, laneSum(a00), w0, x0, CV, C)
    out[1] = tail(L.self, laneSum(a10), w1, x0, CV, C)
    out[2] = tail(L.self, laneSum(a20), w2, x0, CV, C)
    out[3] = tail(L.self, laneSum(a30), w3, x0, CV, C)
    out[R] = tail(L.self, laneSum(a01), w0, x1, CV, C)
    out[R &+ 1] = tail(L.self, laneSum(a11), w1, x1, CV, C)
    out[R &+ 2] = tail(L.self, laneSum(a21), w2, x1, CV, C)
    out[R &+ 3] = tail(L.self, laneSum(a31), w3, x1, CV, C)
}

@inline(__always)
func load8(_ p: UnsafePointer<Float>, _ index: Int) -> SIMD8<Float> {
    UnsafeRawPointer(p + index).loadUnaligned(as: SIMD8<Float>.self)
}

/// The sum of a vector's lanes by halving (four adds for 16 lanes): one fixed order, and far cheaper than
/// the standard `sum()`, which adds the lanes one by one (a chain of 15 scalar adds and shuffles, a large
/// part of a short row's decode).
@inline(__always) @usableFromInline
func laneSum(_ v: SIMD8<Float>) -> Float {
    let four = v.lowHalf + v.highHalf
    let two = four.lowHalf + four.highHalf
    return two[0] + two[1]
}

@inline(__always) @usableFromInline
func laneSum(_ v: SIMD16<Float>) -> Float { laneSum(v.lowHalf + v.highHalf) }

@inline(__always)
func loadVector(_ p: UnsafePointer<Float>, _ index: Int) -> FloatVector {
    UnsafeRawPointer(p + index).loadUnaligned(as: FloatVector.self)
}

@inline(__always)
func store8(_ p: UnsafeMutablePointer<Float>, _ index: Int, _ value: SIMD8<Float>) {
    UnsafeMutableRawPointer(p + index).storeBytes(of: value, as: SIMD8<Float>.self)
}

// MARK: - Naive twin

/// The reference for `matMul`: one scalar dot product per output, accumulated in Double.
public func matMulReference(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols) of `type`
    type: WeightType,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int
) {
    for t in 0..<tokens {
        for r in 0..<rows {
            var sum = 0.0
            for c in 0..<cols {
                sum += Double(weightElement(weight, type: type, index: r * cols + c)) * Double(input[t * cols + c])
            }
            out[t * rows + r] = Float(sum)
        }
    }
}
