// Matrix products against weights stored as f32, f16 or bf16: out[t, r] = sum_c W[r, c] * x[t, c], the
// PyTorch `nn.Linear` layout (W is (rows, cols) = (out_features, in_features), row-major).
// Strategy: threaded over output rows (static, even split through ThreadPool; every row is independent,
// so no reduction between threads). Rows go in tiles of 4 and tokens in pairs: a 4×2 register tile of
// SIMD8<Float> accumulators (8 of the 16 AVX2 registers) loads each weight vector once for 2 tokens
// and each activation vector once for 4 rows; decode (T = 1) runs 4×1 tiles, four independent FMA chains
// over four weight streams, so it is bound by weight bandwidth. Weights are widened to f32 in registers
// (bf16: shift; f16: integer rebias), never copied.
// Reduction order (fixed, independent of T and of the tiling): every output has exactly one SIMD8
// accumulator that adds w·x over the columns in steps of 8 in ascending order, then `sum()` of its lanes,
// then the scalar column tail (< 8) in ascending order. So a token's result does not depend on how many
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

/// Loads weight elements as f32; one conforming type per storage format, so the loops specialize.
@usableFromInline
protocol WeightLoader {
    /// Bytes per element (float formats); quantized loaders override `rowBytes` instead.
    static var stride: Int { get }
    /// Bytes of a row of `cols` elements.
    static func rowBytes(_ cols: Int) -> Int
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float>
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
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)))
    }
}

extension WeightLoader {
    @inline(__always) @usableFromInline
    static func rowBytes(_ cols: Int) -> Int { cols &* stride }
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

private func convertRow<L: WeightLoader>(
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
    let body = { (range: Range<Int>, _: Int) in
        switch type {
        case .f32: matMulRows(F32Loader.self, out, weight, input, tokens, rows, cols, range)
        case .f16: matMulRows(F16Loader.self, out, weight, input, tokens, rows, cols, range)
        case .bf16: matMulRows(BF16Loader.self, out, weight, input, tokens, rows, cols, range)
        }
    }
    if let pool {
        // Prefill tiles are 3 rows, decode tiles 4: chunks of 12 rows leave no row to the scalar tail.
        pool.parallelFor(rows, granularity: 12, body)
    } else {
        body(0..<rows, 0)
    }
}

func matMulRows<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: UnsafePointer<Float>,
    _ T: Int, _ R: Int, _ C: Int, _ rows: Range<Int>
) {
    let rowBytes = L.rowBytes(C)
    var r = rows.lowerBound
    if T >= 4 {
        // Prefill: tiles of 3 rows × 4 tokens (twelve FMA chains, enough to hide the FMA latency; all 16
        // AVX2 registers). Converted formats widen each 3-row tile to f32 once (by the same `load8` the
        // direct path uses, so values and reduction order are identical) and multiply it into every
        // token from L1; the buffer is allocated once per call and thread, not per token.
        let staged = L.self != F32Loader.self
        let buffer: UnsafeMutablePointer<Float>? = staged ? .allocate(capacity: 3 &* C) : nil
        defer { buffer?.deallocate() }
        while r &+ 3 <= rows.upperBound {
            let w = weight + r &* rowBytes
            if let buffer {
                let C8 = C & ~7
                for i in 0..<3 {
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
                tiles3(F32Loader.self, out + r, R, UnsafeRawPointer(buffer), C &* 4, x, T, C)
            } else {
                tiles3(L.self, out + r, R, w, rowBytes, x, T, C)
            }
            r &+= 3
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

/// One 3-row tile against all T tokens: blocks of 4 tokens, then single tokens.
@inline(__always)
private func tiles3<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ R: Int, _ w: UnsafeRawPointer, _ rowBytes: Int,
    _ x: UnsafePointer<Float>, _ T: Int, _ C: Int
) {
    var t = 0
    while t &+ 4 <= T {
        tile3x4(L.self, out + t &* R, R, w, rowBytes, x + (t &* C), C)
        t &+= 4
    }
    while t < T {
        let xt = x + (t &* C)
        for i in 0..<3 { out[t &* R &+ i] = dot1(L.self, w + i &* rowBytes, xt, C) }
        t &+= 1
    }
}

/// Rows w, w + rowBytes, w + 2·rowBytes against tokens x … x + 3C: one accumulator per output.
@inline(__always)
private func tile3x4<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ R: Int, _ w: UnsafeRawPointer, _ rowBytes: Int,
    _ x: UnsafePointer<Float>, _ C: Int
) {
    let C8 = C & ~7
    let w0 = w, w1 = w0 + rowBytes, w2 = w1 + rowBytes
    let x0 = x, x1 = x + C, x2 = x1 + C, x3 = x2 + C
    var a00 = SIMD8<Float>(), a10 = a00, a20 = a00, a01 = a00, a11 = a00, a21 = a00
    var a02 = a00, a12 = a00, a22 = a00, a03 = a00, a13 = a00, a23 = a00
    var c = 0
    while c < C8 {
        let v0 = L.load8(w0, c), v1 = L.load8(w1, c), v2 = L.load8(w2, c)
        var xv = load8(x0, c)
        a00 = madd(a00, v0, xv)
        a10 = madd(a10, v1, xv)
        a20 = madd(a20, v2, xv)
        xv = load8(x1, c)
        a01 = madd(a01, v0, xv)
        a11 = madd(a11, v1, xv)
        a21 = madd(a21, v2, xv)
        xv = load8(x2, c)
        a02 = madd(a02, v0, xv)
        a12 = madd(a12, v1, xv)
        a22 = madd(a22, v2, xv)
        xv = load8(x3, c)
        a03 = madd(a03, v0, xv)
        a13 = madd(a13, v1, xv)
        a23 = madd(a23, v2, xv)
        c &+= 8
    }
    out[0] = tail(L.self, a00.sum(), w0, x0, C8, C)
    out[1] = tail(L.self, a10.sum(), w1, x0, C8, C)
    out[2] = tail(L.self, a20.sum(), w2, x0, C8, C)
    out[R] = tail(L.self, a01.sum(), w0, x1, C8, C)
    out[R &+ 1] = tail(L.self, a11.sum(), w1, x1, C8, C)
    out[R &+ 2] = tail(L.self, a21.sum(), w2, x1, C8, C)
    out[2 &* R] = tail(L.self, a02.sum(), w0, x2, C8, C)
    out[2 &* R &+ 1] = tail(L.self, a12.sum(), w1, x2, C8, C)
    out[2 &* R &+ 2] = tail(L.self, a22.sum(), w2, x2, C8, C)
    out[3 &* R] = tail(L.self, a03.sum(), w0, x3, C8, C)
    out[3 &* R &+ 1] = tail(L.self, a13.sum(), w1, x3, C8, C)
    out[3 &* R &+ 2] = tail(L.self, a23.sum(), w2, x3, C8, C)
}

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
    let C8 = C & ~7
    var a = SIMD8<Float>()
    var c = 0
    while c < C8 {
        a = madd(a, L.load8(w, c), load8(x, c))
        c &+= 8
    }
    return tail(L.self, a.sum(), w, x, C8, C)
}

/// Four rows (w, w + rowBytes, …) · one token; writes out[0..<4].
@inline(__always)
private func tile4x1<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ w: UnsafeRawPointer, _ rowBytes: Int, _ x: UnsafePointer<Float>, _ C: Int
) {
    let C8 = C & ~7
    let w0 = w, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var c = 0
    while c < C8 {
        let xv = load8(x, c)
        a0 = madd(a0, L.load8(w0, c), xv)
        a1 = madd(a1, L.load8(w1, c), xv)
        a2 = madd(a2, L.load8(w2, c), xv)
        a3 = madd(a3, L.load8(w3, c), xv)
        c &+= 8
    }
    out[0] = tail(L.self, a0.sum(), w0, x, C8, C)
    out[1] = tail(L.self, a1.sum(), w1, x, C8, C)
    out[2] = tail(L.self, a2.sum(), w2, x, C8, C)
    out[3] = tail(L.self, a3.sum(), w3, x, C8, C)
}

/// Four rows · two tokens (x, x + C); writes out[0..<4] and out[R..<R + 4].
@inline(__always)
private func tile4x2<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ R: Int, _ w: UnsafeRawPointer, _ rowBytes: Int,
    _ x: UnsafePointer<Float>, _ C: Int
) {
    let C8 = C & ~7
    let w0 = w, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes
    let x0 = x, x1 = x + C
    var a00 = SIMD8<Float>(), a10 = SIMD8<Float>(), a20 = SIMD8<Float>(), a30 = SIMD8<Float>()
    var a01 = SIMD8<Float>(), a11 = SIMD8<Float>(), a21 = SIMD8<Float>(), a31 = SIMD8<Float>()
    var c = 0
    while c < C8 {
        let x0v = load8(x0, c), x1v = load8(x1, c)
        let v0 = L.load8(w0, c), v1 = L.load8(w1, c), v2 = L.load8(w2, c), v3 = L.load8(w3, c)
        a00 = madd(a00, v0, x0v)
        a10 = madd(a10, v1, x0v)
        a20 = madd(a20, v2, x0v)
        a30 = madd(a30, v3, x0v)
        a01 = madd(a01, v0, x1v)
        a11 = madd(a11, v1, x1v)
        a21 = madd(a21, v2, x1v)
        a31 = madd(a31, v3, x1v)
        c &+= 8
    }
    out[0] = tail(L.self, a00.sum(), w0, x0, C8, C)
    out[1] = tail(L.self, a10.sum(), w1, x0, C8, C)
    out[2] = tail(L.self, a20.sum(), w2, x0, C8, C)
    out[3] = tail(L.self, a30.sum(), w3, x0, C8, C)
    out[R] = tail(L.self, a01.sum(), w0, x1, C8, C)
    out[R &+ 1] = tail(L.self, a11.sum(), w1, x1, C8, C)
    out[R &+ 2] = tail(L.self, a21.sum(), w2, x1, C8, C)
    out[R &+ 3] = tail(L.self, a31.sum(), w3, x1, C8, C)
}

@inline(__always)
func load8(_ p: UnsafePointer<Float>, _ index: Int) -> SIMD8<Float> {
    UnsafeRawPointer(p + index).loadUnaligned(as: SIMD8<Float>.self)
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
