// Prefill (many tokens at once) against Q8_0/Q4_0 weights with 8-bit activations and AVX-512 VNNI, the way
// llama.cpp's repacked Q4_0/Q8_0 GEMMs work:
//   out[t, r] = Σ_blocks d_w[r, b]·d_x[t, b] · Σ_{i in block} q_w[r, i]·q_x[t, i]
// The activations are quantized per token in blocks of 32 (`quantizeActivations`, as decode's int8 path).
// Why a repacked panel: `vpdpbusd` multiplies four unsigned bytes by four signed bytes and adds the four
// products to one int32 lane, 64 products per instruction (the f32 FMA tiles do 16). If the lanes held
// columns of one dot product, every block would need a horizontal reduction before its scale. So a panel of
// rows is first repacked: for 16 rows and 4 consecutive columns, one 64-byte vector holds 4 codes of each
// row (row j in lane j). Broadcasting 4 activation codes of a token against it adds their products to 16
// different outputs; after the 8 steps of a block each lane holds one (row, token) block dot, which is then
// converted and scaled once for 16 outputs: 8 `vpdpbusd` + 3 float ops per 512 products.
// `vpdpbusd` takes the activations unsigned: the codes are stored as q_x + 128, and every lane starts at
// −128·Σ_i q_w[r, i] (computed from the packed codes when they are staged), so the integer sums are exact:
// |Σ q_w q_x| ≤ 32·127·127 < 2^24, exact in f32 too. Per output the blocks are scaled and accumulated in
// ascending order with one fused multiply-add each, so a token's result does not depend on the tile, the
// thread split or how many tokens share the call, and `matMulQuantizedInt8PrefillReference` (scalar) gives
// the same bits.
// Accuracy: the activations' rounding (up to max|x|/254 per block, as llama.cpp's) is the only difference
// from the exact product of the de-quantized weights; `intern perplexity --reference` measures it.
#if INTERNKIT_AVX512
    import _Builtin_intrinsics.intel
#endif

/// Whether prefill of Q8_0/Q4_0 weights can take `matMulQuantizedInt8Prefill`'s VNNI kernel (AVX-512 builds).
public let int8PrefillIsVectorized: Bool = {
    #if INTERNKIT_AVX512
        true
    #else
        false
    #endif
}()

/// Whether `matMulQuantizedInt8Prefill` supports `type`.
public func supportsInt8Prefill(_ type: BlockQuantization) -> Bool { type == .q8_0 || type == .q4_0 }

/// out (T, R) = x (T, C) · Wᵀ with W in Q8_0 or Q4_0 blocks and x quantized to 8 bits per block of 32;
/// threaded over groups of 32 rows when `pool` is given. Without AVX-512 it runs the scalar reference.
public func matMulQuantizedInt8Prefill(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer, type: BlockQuantization,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    precondition(supportsInt8Prefill(type) && cols % 32 == 0, "int8 prefill needs q8_0/q4_0 weights and whole blocks of 32")
    #if INTERNKIT_AVX512
        guard tokens > 0, rows > 0 else { return }
        let blocks = cols / 32
        // The quantized tokens (codes + 128, then one f32 scale per block), once per call for all threads.
        let codes = UnsafeMutablePointer<Int8>.allocate(capacity: tokens * cols)
        let scales = UnsafeMutablePointer<Float>.allocate(capacity: tokens * blocks)
        defer {
            codes.deallocate()
            scales.deallocate()
        }
        quantizeActivations(input, count: tokens * cols, q: codes, scales: scales)
        let bias = _mm512_set1_epi8(-128)
        var i = 0
        while i + 64 <= tokens * cols {
            let p = UnsafeMutableRawPointer(codes + i)
            p.storeBytes(of: _mm512_xor_si512(p.loadUnaligned(as: __m512i.self), bias), as: __m512i.self)
            i += 64
        }
        while i < tokens * cols {
            codes[i] = codes[i] ^ -128
            i += 1
        }
        let x = PackedTokens(codes: UnsafeRawPointer(codes), scales: scales, cols: cols, count: tokens)
        let pairs = (rows + 31) / 32
        let body = { (range: Range<Int>, _: Int) in
            int8PrefillRows(type, out, weight, x, rows, cols, range.lowerBound * 32..<min(rows, range.upperBound * 32))
        }
        if let pool {
            pool.parallelFor(pairs, body)
        } else {
            body(0..<pairs, 0)
        }
    #else
        matMulQuantizedInt8PrefillReference(out, weight: weight, type: type, input: input, tokens: tokens, rows: rows, cols: cols)
    #endif
}

// MARK: - Naive twin

/// The reference for `matMulQuantizedInt8Prefill`: the same quantized activations, scalar integer block
/// dots, and the same per-output order of fused multiply-adds (so the same bits).
public func matMulQuantizedInt8PrefillReference(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer, type: BlockQuantization,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int
) {
    precondition(supportsInt8Prefill(type) && cols % 32 == 0, "int8 prefill needs q8_0/q4_0 weights and whole blocks of 32")
    let blocks = cols / 32, rowBytes = type.rowBytes(cols)
    var q = [Int8](repeating: 0, count: tokens * cols), scales = [Float](repeating: 0, count: tokens * blocks)
    quantizeActivations(input, count: tokens * cols, q: &q, scales: &scales)
    for t in 0..<tokens {
        for r in 0..<rows {
            var acc: Float = 0
            for b in 0..<blocks {
                let block = weight + r * rowBytes + b * type.blockBytes
                var dot = 0
                for i in 0..<32 {
                    let code: Int
                    switch type {
                    case .q8_0: code = Int(block.load(fromByteOffset: 2 + i, as: Int8.self))
                    default:
                        let byte = block.load(fromByteOffset: 2 + i % 16, as: UInt8.self)
                        code = Int(i < 16 ? byte & 0xF : byte >> 4) - 8
                    }
                    dot += code * Int(q[t * cols + b * 32 + i])
                }
                let dw = Float(Float16(bitPattern: block.loadUnaligned(as: UInt16.self)))
                acc = acc.addingProduct(Float(dot), dw * scales[t * blocks + b])
            }
            out[t * rows + r] = acc
        }
    }
}

// MARK: - AVX-512 VNNI

#if INTERNKIT_AVX512
    /// Tokens quantized for `vpdpbusd`: `count` rows of `cols` codes + 128, and one scale per block of 32.
    private struct PackedTokens {
        let codes: UnsafeRawPointer
        let scales: UnsafePointer<Float>
        let cols: Int
        let count: Int
    }

    /// Bytes of one packed block of 16 rows: 8 vectors of codes, the 16 scales (f32), the 16 start values.
    private let packedBlockBytes = 640

    /// Rows staged at once: 256 rows of 2048 columns pack into 640 KiB, within a server core's L2 next to
    /// the tokens in use.
    private let panelBytes = 640 << 10

    /// Rows `rows` (a range of whole groups of 32, except at the matrix's end) for every token: stage a panel
    /// of groups of 16, then every block of 4 tokens runs through all of its pairs of groups.
    private func int8PrefillRows(
        _ type: BlockQuantization, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: PackedTokens,
        _ R: Int, _ C: Int, _ rows: Range<Int>
    ) {
        let blocks = C / 32, groupBytes = blocks * packedBlockBytes
        let panelPairs = max(1, panelBytes / (2 * groupBytes))
        let panel = UnsafeMutableRawPointer.allocate(byteCount: panelPairs * 2 * groupBytes, alignment: 64)
        defer { panel.deallocate() }
        var r = rows.lowerBound
        while r < rows.upperBound {
            let pairs = min(panelPairs, (rows.upperBound - r + 31) / 32)
            for g in 0..<(2 * pairs) {
                packGroup(type, panel + g * groupBytes, weight, firstRow: r + 16 * g, R: R, C: C)
            }
            var t = 0
            while t < x.count {
                for p in 0..<pairs {
                    let group = panel + 2 * p * groupBytes
                    tile32x4(out, R, firstRow: r + 32 * p, group, group + groupBytes, x, firstToken: t, blocks: blocks)
                }
                t += 4
            }
            r += 32 * pairs
        }
    }

    /// Repacks rows firstRow ..< firstRow + 16 (rows past R repeat row R − 1; their outputs are dropped) into
    /// `packedBlockBytes` per block: vector k (0..<8) holds codes 4k ..< 4k + 4 of each row, lane j row j.
    @inline(__always)
    private func packGroup(
        _ type: BlockQuantization, _ dst: UnsafeMutableRawPointer, _ weight: UnsafeRawPointer, firstRow: Int, R: Int, C: Int
    ) {
        let rowBytes = type.rowBytes(C), blockBytes = type.blockBytes
        let low = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8), biasBytes = _mm512_set1_epi8(-128)
        for b in 0..<(C / 32) {
            let d = dst + b * packedBlockBytes
            var halves = SIMD16<UInt16>()
            for j in 0..<16 {
                let block = weight + min(firstRow + j, R - 1) * rowBytes + b * blockBytes
                halves[j] = block.loadUnaligned(as: UInt16.self)
                for k in 0..<(type == .q8_0 ? 8 : 4) {
                    let v = block.loadUnaligned(fromByteOffset: 2 + 4 * k, as: UInt32.self)
                    if type == .q8_0 {
                        d.storeBytes(of: v, toByteOffset: 64 * k + 4 * j, as: UInt32.self)
                    } else {
                        // Q4_0: byte i holds code i (low nibble) and code i + 16 (high nibble).
                        d.storeBytes(of: v, toByteOffset: 64 * k + 4 * j, as: UInt32.self)
                        d.storeBytes(of: v >> 4, toByteOffset: 64 * (k + 4) + 4 * j, as: UInt32.self)
                    }
                }
            }
            if type == .q4_0 {
                // Nibbles to signed codes: q − 8.
                for k in 0..<8 {
                    let v = d.load(fromByteOffset: 64 * k, as: __m512i.self)
                    d.storeBytes(of: _mm512_sub_epi8(_mm512_and_si512(v, low), eight), toByteOffset: 64 * k, as: __m512i.self)
                }
            }
            d.storeBytes(of: _mm512_cvtph_ps(unsafeBitCast(halves, to: __m256i.self)), toByteOffset: 512, as: __m512.self)
            // Start values −128·Σ q_w: the same dot of 128s against the codes, negated.
            var sum = _mm512_setzero_si512()
            for k in 0..<8 { sum = _mm512_dpbusd_epi32(sum, biasBytes, d.load(fromByteOffset: 64 * k, as: __m512i.self)) }
            d.storeBytes(of: _mm512_sub_epi32(_mm512_setzero_si512(), sum), toByteOffset: 576, as: __m512i.self)
        }
    }

    /// Two packed groups (32 rows) against tokens firstToken ..< firstToken + 4 (past the last token the last
    /// one is repeated and not stored): 8 int32 accumulators per block, 8 f32 accumulators over the blocks.
    @inline(__always)
    private func tile32x4(
        _ out: UnsafeMutablePointer<Float>, _ R: Int, firstRow: Int, _ g0: UnsafeRawPointer, _ g1: UnsafeRawPointer,
        _ x: PackedTokens, firstToken: Int, blocks: Int
    ) {
        let C = x.cols, last = x.count - 1
        let t0 = firstToken, t1 = min(t0 + 1, last), t2 = min(t0 + 2, last), t3 = min(t0 + 3, last)
        let x0 = x.codes + t0 * C, x1 = x.codes + t1 * C, x2 = x.codes + t2 * C, x3 = x.codes + t3 * C
        let s0 = x.scales + t0 * blocks, s1 = x.scales + t1 * blocks, s2 = x.scales + t2 * blocks, s3 = x.scales + t3 * blocks
        var f00 = _mm512_setzero_ps(), f01 = f00, f02 = f00, f03 = f00
        var f10 = f00, f11 = f00, f12 = f00, f13 = f00
        for b in 0..<blocks {
            let p0 = g0 + b * packedBlockBytes, p1 = g1 + b * packedBlockBytes
            let start0 = p0.load(fromByteOffset: 576, as: __m512i.self), start1 = p1.load(fromByteOffset: 576, as: __m512i.self)
            var i00 = start0, i01 = start0, i02 = start0, i03 = start0
            var i10 = start1, i11 = start1, i12 = start1, i13 = start1
            let c = b * 32
            for k in 0..<8 {
                let w0 = p0.load(fromByteOffset: 64 * k, as: __m512i.self), w1 = p1.load(fromByteOffset: 64 * k, as: __m512i.self)
                @inline(__always) func codes(_ xt: UnsafeRawPointer) -> __m512i {
                    _mm512_set1_epi32(xt.loadUnaligned(fromByteOffset: c + 4 * k, as: Int32.self))
                }
                var a = codes(x0)
                i00 = _mm512_dpbusd_epi32(i00, a, w0)
                i10 = _mm512_dpbusd_epi32(i10, a, w1)
                a = codes(x1)
                i01 = _mm512_dpbusd_epi32(i01, a, w0)
                i11 = _mm512_dpbusd_epi32(i11, a, w1)
                a = codes(x2)
                i02 = _mm512_dpbusd_epi32(i02, a, w0)
                i12 = _mm512_dpbusd_epi32(i12, a, w1)
                a = codes(x3)
                i03 = _mm512_dpbusd_epi32(i03, a, w0)
                i13 = _mm512_dpbusd_epi32(i13, a, w1)
            }
            let d0 = p0.load(fromByteOffset: 512, as: __m512.self), d1 = p1.load(fromByteOffset: 512, as: __m512.self)
            @inline(__always) func scaled(_ f: __m512, _ i: __m512i, _ dw: __m512, _ dx: Float) -> __m512 {
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(dw, _mm512_set1_ps(dx)), f)
            }
            f00 = scaled(f00, i00, d0, s0[b])
            f10 = scaled(f10, i10, d1, s0[b])
            f01 = scaled(f01, i01, d0, s1[b])
            f11 = scaled(f11, i11, d1, s1[b])
            f02 = scaled(f02, i02, d0, s2[b])
            f12 = scaled(f12, i12, d1, s2[b])
            f03 = scaled(f03, i03, d0, s3[b])
            f13 = scaled(f13, i13, d1, s3[b])
        }
        // Rows past R and repeated tokens are masked off.
        let valid0 = UInt16(truncatingIfNeeded: (1 << max(0, min(16, R - firstRow))) - 1)
        let valid1 = UInt16(truncatingIfNeeded: (1 << max(0, min(16, R - firstRow - 16))) - 1)
        @inline(__always) func store(_ t: Int, _ a: __m512, _ b: __m512) {
            guard firstToken + t <= last else { return }
            let o = out + (firstToken + t) * R + firstRow
            _mm512_mask_storeu_ps(o, valid0, a)
            _mm512_mask_storeu_ps(o + 16, valid1, b)
        }
        store(0, f00, f10)
        store(1, f01, f11)
        store(2, f02, f12)
        store(3, f03, f13)
    }
#endif
