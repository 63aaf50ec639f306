// Prefill (many tokens at once) against bf16 weights with AVX-512 BF16 dot products, as llama.cpp's bf16
// path computes it: the activations are rounded to bf16 once per call, then `vdpbf16ps` multiplies 32 bf16
// weights by 32 bf16 activations and adds the pairs into 16 f32 lanes, twice the products per instruction of
// the f32 FMA tiles, reading the weights in place (no f32 staging, so half the bytes through the caches).
// Tiles of 6 rows × 4 tokens (24 accumulators of the 32 registers), blocked like `matMul`'s prefill: a panel
// of rows stays in L2 while every block of tokens runs through it. Only for prefill, and opt-in
// (INTERNKIT_ACTIVATIONS=bf16, see `WeightMatrix`): decode keeps exact f32 activations, and a token's prefill result depends on neither the tiling
// nor the token count (one accumulator per output over ascending columns, then its lane sum).
// Accuracy: the activations' bf16 rounding (relative 2^-9) is the difference from `matMul`; the weights are
// bf16 already. `matMulBF16PrefillReference` rounds the same way and accumulates in Double.
#if INTERNKIT_AVX512BF16
    import CBFloat16
    import _Builtin_intrinsics.intel
#endif

/// Whether `matMulBF16Prefill` runs AVX-512 BF16 instructions (hosts listing avx512_bf16; else the reference).
public let bf16PrefillIsVectorized: Bool = {
    #if INTERNKIT_AVX512BF16
        true
    #else
        false
    #endif
}()

/// out (T, R) = bf16(x) (T, C) · Wᵀ with W (R, C) in bf16; threaded over rows when `pool` is given.
public func matMulBF16Prefill(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols) bf16
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    #if INTERNKIT_AVX512BF16
        guard tokens > 0, rows > 0 else { return }
        // Each token's activations as bf16, padded with zeros to whole vectors of 32.
        let stride = (cols + 31) & ~31
        let x = UnsafeMutableRawPointer.allocate(byteCount: tokens * stride * 2, alignment: 64)
        defer { x.deallocate() }
        for t in 0..<tokens {
            let src = input + t * cols, dst = x + t * stride * 2
            var c = 0
            while c < stride {
                let low = _mm512_maskz_loadu_ps(mask16(cols - c), src + c)
                let high = _mm512_maskz_loadu_ps(mask16(cols - c - 16), src + c + 16)
                dst.storeBytes(of: intern_bf16_pair(low, high), toByteOffset: c * 2, as: __m512i.self)
                c += 32
            }
        }
        let activations = UnsafeRawPointer(x)
        let body = { (range: Range<Int>, _: Int) in bf16Rows(out, weight, activations, stride, tokens, rows, cols, range) }
        if let pool {
            pool.parallelFor(rows, granularity: 12, body)
        } else {
            body(0..<rows, 0)
        }
    #else
        matMulBF16PrefillReference(out, weight: weight, input: input, tokens: tokens, rows: rows, cols: cols)
    #endif
}

/// `x` rounded to bf16, to nearest even (NaN stays NaN), as `vcvtne2ps2bf16` rounds finite values.
public func roundedToBFloat16(_ x: Float) -> Float {
    if x.isNaN { return x }
    let bits = x.bitPattern
    return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
}

// MARK: - Naive twin

/// The reference for `matMulBF16Prefill`: activations rounded to bf16, products accumulated in Double.
public func matMulBF16PrefillReference(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer, input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int
) {
    for t in 0..<tokens {
        for r in 0..<rows {
            var sum = 0.0
            for c in 0..<cols {
                let w = Float(bitPattern: UInt32(weight.loadUnaligned(fromByteOffset: (r * cols + c) * 2, as: UInt16.self)) << 16)
                sum += Double(w) * Double(roundedToBFloat16(input[t * cols + c]))
            }
            out[t * rows + r] = Float(sum)
        }
    }
}

// MARK: - AVX-512 BF16

#if INTERNKIT_AVX512BF16
    /// The first `count` (clamped to 0...16) of 16 lanes.
    @inline(__always)
    private func mask16(_ count: Int) -> UInt16 { UInt16(truncatingIfNeeded: (1 << max(0, min(16, count))) &- 1) }

    /// 32 bf16 weights from c, zeros past C (the last vector of a row whose length is not a multiple of 32).
    @inline(__always)
    private func weights(_ row: UnsafeRawPointer, _ c: Int, _ C: Int) -> __m512i {
        if c &+ 32 <= C { return row.loadUnaligned(fromByteOffset: c &* 2, as: __m512i.self) }
        return _mm512_maskz_loadu_epi16(UInt32(truncatingIfNeeded: (1 << (C &- c)) &- 1), row + c &* 2)
    }

    /// Rows `rows` for every token: panels of rows (about `prefillPanelBytes / 2` of bf16) × blocks of
    /// tokens, 6 × 4 tiles inside.
    private func bf16Rows(
        _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: UnsafeRawPointer, _ stride: Int,
        _ T: Int, _ R: Int, _ C: Int, _ rows: Range<Int>
    ) {
        let rowBytes = C &* 2, xBytes = stride &* 2
        let panelRows = max(1, (prefillPanelBytes / 2) / rowBytes / 6) &* 6
        let tokenBlock = max(4, (prefillTokenBytes / xBytes) & ~3)
        var r = rows.lowerBound
        while r &+ 6 <= rows.upperBound {
            let n = min(panelRows, (rows.upperBound &- r) / 6 &* 6)
            var t0 = 0
            while t0 < T {
                let count = min(tokenBlock, T &- t0)
                for tile in Swift.stride(from: r, to: r &+ n, by: 6) {
                    let w = weight + tile &* rowBytes
                    var t = t0
                    while t &+ 4 <= t0 &+ count {
                        tile6x4(out + (t &* R &+ tile), R, w, rowBytes, x + t &* xBytes, xBytes, C)
                        t &+= 4
                    }
                    while t < t0 &+ count {
                        for i in 0..<6 { out[t &* R &+ tile &+ i] = dot(w + i &* rowBytes, x + t &* xBytes, C) }
                        t &+= 1
                    }
                }
                t0 &+= count
            }
            r &+= n
        }
        while r < rows.upperBound {
            for t in 0..<T { out[t &* R &+ r] = dot(weight + r &* rowBytes, x + t &* xBytes, C) }
            r &+= 1
        }
    }

    @inline(__always)
    private func dot(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, _ C: Int) -> Float {
        var acc = _mm512_setzero_ps()
        var c = 0
        while c < C {
            acc = intern_dpbf16(acc, weights(w, c, C), x.load(fromByteOffset: c &* 2, as: __m512i.self))
            c &+= 32
        }
        return laneSum(acc)
    }

    /// Rows w … w + 5·rowBytes against 4 tokens from x (xBytes apart): one accumulator per output.
    @inline(__always)
    private func tile6x4(
        _ out: UnsafeMutablePointer<Float>, _ R: Int, _ w: UnsafeRawPointer, _ rowBytes: Int, _ x: UnsafeRawPointer,
        _ xBytes: Int, _ C: Int
    ) {
        let w0 = w, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes, w4 = w3 + rowBytes, w5 = w4 + rowBytes
        let x0 = x, x1 = x + xBytes, x2 = x1 + xBytes, x3 = x2 + xBytes
        var a00 = _mm512_setzero_ps(), a10 = a00, a20 = a00, a30 = a00, a40 = a00, a50 = a00
        var a01 = a00, a11 = a00, a21 = a00, a31 = a00, a41 = a00, a51 = a00
        var a02 = a00, a12 = a00, a22 = a00, a32 = a00, a42 = a00, a52 = a00
        var a03 = a00, a13 = a00, a23 = a00, a33 = a00, a43 = a00, a53 = a00
        var c = 0
        while c < C {
            let v0 = weights(w0, c, C), v1 = weights(w1, c, C), v2 = weights(w2, c, C)
            let v3 = weights(w3, c, C), v4 = weights(w4, c, C), v5 = weights(w5, c, C)
            var xv = x0.load(fromByteOffset: c &* 2, as: __m512i.self)
            a00 = intern_dpbf16(a00, v0, xv)
            a10 = intern_dpbf16(a10, v1, xv)
            a20 = intern_dpbf16(a20, v2, xv)
            a30 = intern_dpbf16(a30, v3, xv)
            a40 = intern_dpbf16(a40, v4, xv)
            a50 = intern_dpbf16(a50, v5, xv)
            xv = x1.load(fromByteOffset: c &* 2, as: __m512i.self)
            a01 = intern_dpbf16(a01, v0, xv)
            a11 = intern_dpbf16(a11, v1, xv)
            a21 = intern_dpbf16(a21, v2, xv)
            a31 = intern_dpbf16(a31, v3, xv)
            a41 = intern_dpbf16(a41, v4, xv)
            a51 = intern_dpbf16(a51, v5, xv)
            xv = x2.load(fromByteOffset: c &* 2, as: __m512i.self)
            a02 = intern_dpbf16(a02, v0, xv)
            a12 = intern_dpbf16(a12, v1, xv)
            a22 = intern_dpbf16(a22, v2, xv)
            a32 = intern_dpbf16(a32, v3, xv)
            a42 = intern_dpbf16(a42, v4, xv)
            a52 = intern_dpbf16(a52, v5, xv)
            xv = x3.load(fromByteOffset: c &* 2, as: __m512i.self)
            a03 = intern_dpbf16(a03, v0, xv)
            a13 = intern_dpbf16(a13, v1, xv)
            a23 = intern_dpbf16(a23, v2, xv)
            a33 = intern_dpbf16(a33, v3, xv)
            a43 = intern_dpbf16(a43, v4, xv)
            a53 = intern_dpbf16(a53, v5, xv)
            c &+= 32
        }
        @inline(__always) func store(_ t: Int, _ a: (__m512, __m512, __m512, __m512, __m512, __m512)) {
            let o = out + t &* R
            o[0] = laneSum(a.0)
            o[1] = laneSum(a.1)
            o[2] = laneSum(a.2)
            o[3] = laneSum(a.3)
            o[4] = laneSum(a.4)
            o[5] = laneSum(a.5)
        }
        store(0, (a00, a10, a20, a30, a40, a50))
        store(1, (a01, a11, a21, a31, a41, a51))
        store(2, (a02, a12, a22, a32, a42, a52))
        store(3, (a03, a13, a23, a33, a43, a53))
    }
#endif
