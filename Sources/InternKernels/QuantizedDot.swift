// Products of Q8_0/Q4_0/Q6_K weights with activations quantized to 8 bits, as llama.cpp's
// `ggml_vec_dot_q4_0_q8_0` and `ggml_vec_dot_q8_0_q8_0` compute them:
//   out[t, r] = Σ_blocks [ d_w·d_x · Σ_i q_w[i]·q_x[i] + m_w·s_x ]
// Each token is first quantized in blocks of 32 (`quantizeActivations`: d_x = max|x|/127, q_x = round(x/d_x),
// ggml `quantize_row_q8_0`; s_x = d_x·Σq_x), then every block product is an integer dot product.
// Why 8 bits for Q4_0 and Q6_K decode (the default there on the vector tiers, see WeightMatrix): `vpmaddubsw` multiplies
// 32 unsigned codes by 32 int8 activations in one instruction, twice the products of `vpmaddwd` on int16,
// and on cores with one integer-multiply pipe (AMD Zen 1/2) that pipe bounds decode. A nibble times an int8
// is at most 15·127, so the int16 pair sums of two block halves and two levels of `vphaddw` cannot overflow
// (16 products ≤ 30480): eight Q4_0 blocks take 16 `vpmaddubsw` and one `vpmaddwd`, not the 32 `vpmaddwd` of
// the int16 kernel. Q6_K's unsigned 6-bit codes go straight into `vpmaddubsw` (the − 32 is applied per
// sub-block from the activations' sums), which saves the int16 kernel's sign extension by shifts, the
// other contended pipe. Q8_0 (int8 × int8: pair sums up to 32258, no headroom) needs `vpmaddwd` per block,
// as llama.cpp's `mul_sum_i8_pairs` (the weights' signs moved onto the activations): no fewer multiplies than
// the int16 kernel, so Q8_0 keeps int16 by default.
// Accuracy trade-off: the activations carry a rounding error of up to d_x/2 = max|x|/254 per block, so the
// result is not the exact product of the de-quantized weights (`matMulQuantized` is); llama.cpp accepts the
// same error. `intern perplexity --reference` measures it on a model (BENCHMARKS.md, CPU inference).
// Threaded over rows; every output runs the same code whatever the batch (groups of eight blocks reduced into
// one vector and scaled at once, then the leftover blocks one by one), so a token's result does not depend on
// how many tokens share the call. Elsewhere (arm64, portable x86-64) the same arithmetic runs in scalar code.
#if INTERNKIT_FMA
    import _Builtin_intrinsics.intel
#endif

/// Whether this build runs `matMulQuantizedInt8` with vector instructions (else scalar integer code).
public let int8ActivationsAreVectorized: Bool = {
    #if INTERNKIT_FMA
        true
    #else
        false
    #endif
}()

/// Whether `matMulQuantizedInt8` supports `type`.
public func supportsInt8Activations(_ type: BlockQuantization) -> Bool { type == .q8_0 || type == .q4_0 || type == .q6_K }

/// Whether decode takes 8-bit activations for `type` by default: Q4_0 and Q6_K on the vector tiers (fewer
/// multiplies, fewer shifts; on AVX-512 with `vpdpbusd`). Measured on AMD Zen 1 (AVX2) and Zen 4 (AVX-512:
/// small-shape Q4_0 decode 133–145 → 156–166 t/s against the int16 `vpdpwssd` kernels); not on Intel.
public func prefersInt8Activations(_ type: BlockQuantization) -> Bool {
    #if INTERNKIT_FMA
        type == .q4_0 || type == .q6_K
    #else
        false
    #endif
}

/// Quantizes `count` activations (a multiple of 32) into int8 blocks of 32: `q` gets `count` values,
/// `scales` one per block (q·scale ≈ x, rounded to nearest even as ggml's AVX2 `quantize_row_q8_0`) and
/// `sums`, when given, scale·Σq per block.
public func quantizeActivations(
    _ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>,
    sums: UnsafeMutablePointer<Float>? = nil
) {
    precondition(count % 32 == 0, "activations must come in blocks of 32")
    for b in 0..<(count / 32) {
        let xb = x + b &* 32
        #if INTERNKIT_FMA
            let d = blockAbsMax(xb) / 127
            let id = _mm256_set1_ps(d != 0 ? 1 / d : 0)
            @inline(__always) func codes(_ i: Int) -> __m256i {
                _mm256_cvtps_epi32(_mm256_mul_ps(UnsafeRawPointer(xb + i).loadUnaligned(as: __m256.self), id))
            }
            let c0 = codes(0), c1 = codes(8), c2 = codes(16), c3 = codes(24)
            let total = _mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3))
            // packs works per 128-bit lane: [c0 c1 c2 c3] as dwords 0,4,1,5,2,6,3,7 → put them back in order.
            let bytes = _mm256_packs_epi16(_mm256_packs_epi32(c0, c1), _mm256_packs_epi32(c2, c3))
            let ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
            UnsafeMutableRawPointer(q + b &* 32).storeBytes(of: ordered, as: __m256i.self)
            scales[b] = d
            sums?[b] = d * Float(unsafeBitCast(total, to: SIMD8<Int32>.self).wrappedSum())
        #else
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(xb[i])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            var total = 0
            for i in 0..<32 {
                let code = Int8((xb[i] * id).rounded(.toNearestOrEven))
                q[b &* 32 &+ i] = code
                total += Int(code)
            }
            scales[b] = d
            sums?[b] = d * Float(total)
        #endif
    }
}

/// out (T, R) = x (T, C) · Wᵀ with W in Q8_0 or Q4_0 blocks and x quantized to 8 bits per block of 32.
public func matMulQuantizedInt8(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer, type: BlockQuantization,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    precondition(
        supportsInt8Activations(type) && cols % type.blockSize == 0, "int8 activations need q8_0/q4_0/q6_K and whole blocks")
    let blocks = cols / 32
    // One allocation per call for the quantized activations (on the stack when small, as in decode).
    // Q6_K also takes −32·d_x·Σq_x per 16 (its q − 32 offset, applied per sub-block scale).
    withUnsafeTemporaryAllocation(byteCount: tokens * cols + tokens * blocks * 16, alignment: 32) { raw in
        let q = raw.baseAddress!.bindMemory(to: Int8.self, capacity: tokens * cols)
        let scales = (raw.baseAddress! + tokens * cols).bindMemory(to: Float.self, capacity: 4 * tokens * blocks)
        let sums = scales + tokens * blocks
        // Block sums only where a kernel takes them: Q4_0's −8 offset (Q6_K's per-16 sums come next).
        quantizeActivations(input, count: tokens * cols, q: q, scales: scales, sums: type == .q4_0 ? sums : nil)
        if type == .q6_K {
            for half in 0..<(2 * tokens * blocks) {
                var total = 0
                for i in 0..<16 { total += Int(q[half &* 16 &+ i]) }
                sums[half] = -32 * scales[half / 2] * Float(total)
            }
        }
        #if INTERNKIT_FMA
            if type == .q4_0 { arrange(q, tokens: tokens, cols: cols, layout: Int8Layout.nibblePairs) }
        #endif
        let x = Int8Activations(q: q, scales: scales, sums: sums, cols: cols)
        let body = { (range: Range<Int>, _: Int) in int8Rows(type, out, weight, x, tokens, rows, range) }
        if let pool {
            pool.parallelFor(rows, granularity: 4, body)
        } else {
            body(0..<rows, 0)
        }
    }
}

/// Tokens quantized by `quantizeActivations`, with their block sums (for Q6_K: −32·d_x·Σq_x per 16).
typealias Int8Activations = QuantizedActivations<Int8>

private func int8Rows(
    _ type: BlockQuantization, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: Int8Activations,
    _ T: Int, _ R: Int, _ rows: Range<Int>
) {
    if type == .q6_K { return q6KRows(out, weight, x, T, R, rows) }
    let blocks = x.blocks, C = x.cols, rowBytes = blocks &* type.blockBytes
    for r in rows {
        let row = weight + r &* rowBytes
        for t in 0..<T {
            let xq = x.q + t &* C, xs = x.scales + t &* blocks, sx = x.sums + t &* blocks
            out[t &* R &+ r] = type == .q4_0 ? dotQ4_0(row, xq, xs, sx, blocks) : dotQ8_0(row, xq, xs, blocks)
        }
    }
}

#if INTERNKIT_FMA
    /// The order of the int8 activations within each whole group of 256 (eight blocks) for the Q4_0 kernel:
    /// blocks k and k + 4 share one register of nibble bytes (16 each), so per pair k: the first 16
    /// activations of block k then of block k + 4 (the low nibbles), then their last 16 (the high nibbles).
    /// Entry i is the source index of position i.
    enum Int8Layout {
        static let nibblePairs: [Int] = (0..<256).map { i in
            let pair = i / 64, half = i % 64 / 32, lane = i % 32
            return (lane < 16 ? pair : pair + 4) * 32 + half * 16 + lane % 16
        }
    }

    @inline(__always)
    private func load256(_ p: UnsafeRawPointer) -> __m256i { p.loadUnaligned(as: __m256i.self) }

    #if INTERNKIT_AVX512
        /// acc + Σ of each lane's four unsigned-by-signed byte products (`vpdpbusd` on 256 bits). Clang declares
        /// the unmasked form as a macro, which Swift cannot import; the all-lanes mask compiles to the same
        /// instruction.
        @inline(__always)
        private func dpbusd256(_ acc: __m256i, _ unsigned: __m256i, _ signed: __m256i) -> __m256i {
            _mm256_mask_dpbusd_epi32(acc, 0xFF, unsigned, signed)
        }
    #endif

    /// Σ_i |w_i|·(sign(w_i)·x_i) over 32 bytes, as eight int32 lanes.
    @inline(__always)
    private func signedBlockSum(_ w: __m256i, _ x: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1))
    }

    @inline(__always)
    private func dotQ8_0(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>, _ blocks: Int) -> Float {
        let swapHalves = _mm256_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3), upperHalf = _mm256_setr_epi32(0, 0, 0, 0, -1, -1, -1, -1)
        var acc = _mm256_setzero_ps()
        var b = 0
        while b &+ 8 <= blocks {
            let first = row + b &* 34, x = UnsafeRawPointer(xq + b &* 32)
            prefetch(first + prefetchDistance, bytes: 8 &* 34)
            @inline(__always) func block(_ k: Int) -> __m256i { signedBlockSum(load256(first + (k &* 34 &+ 2)), load256(x + k &* 32)) }
            // Per 128-bit half: [Σp0, Σp1, Σp2, Σp3] over that half's lanes, then both halves added.
            let h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(block(0), block(1)), _mm256_hadd_epi32(block(2), block(3)))
            let h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(block(4), block(5)), _mm256_hadd_epi32(block(6), block(7)))
            let s0123 = _mm256_add_epi32(h0123, _mm256_permutevar8x32_epi32(h0123, swapHalves))
            let s4567 = _mm256_add_epi32(h4567, _mm256_permutevar8x32_epi32(h4567, swapHalves))
            let sums = _mm256_cvtepi32_ps(_mm256_blendv_epi8(s0123, s4567, upperHalf))
            let dx = UnsafeRawPointer(xs + b).loadUnaligned(as: __m256.self)
            acc = _mm256_fmadd_ps(sums, _mm256_mul_ps(halves8(first, stride: 34), dx), acc)
            b &+= 8
        }
        var total = laneSum(acc)
        while b < blocks {
            let block = row + b &* 34
            let sum = unsafeBitCast(signedBlockSum(load256(block + 2), load256(xq + b &* 32)), to: SIMD8<Int32>.self).wrappedSum()
            total = total.addingProduct(Float(sum), half(block, 0) * xs[b])
            b &+= 1
        }
        return total
    }

    /// Σ q_w·q_x of a Q4_0 block (unsigned nibbles, activations in natural order), as eight int32 lanes.
    @inline(__always)
    private func nibbleBlockSum(_ nibbles: UnsafeRawPointer, _ x: UnsafePointer<Int8>) -> __m256i {
        let bytes = nibbles.loadUnaligned(as: __m128i.self)
        let w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(bytes, 4), bytes), _mm256_set1_epi8(0x0F))
        return _mm256_madd_epi16(_mm256_maddubs_epi16(w, load256(x)), _mm256_set1_epi16(1))
    }

    /// The exact Σ q_w·q_x of eight Q4_0 blocks from `first` (lane i: block i) against activations in
    /// `Int8Layout.nibblePairs` order: per pair (k, k + 4) two `vpmaddubsw` whose int16 sums add, two levels of
    /// `vphaddw` (still ≤ 16·15·127 per lane) and one `vpmaddwd` leave [blocks 0–3 | blocks 4–7]. With AVX-512
    /// VNNI (on 256-bit registers) each pair is two `vpdpbusd` into int32 lanes instead (four products summed
    /// per instruction: no separate add, no final `vpmaddwd`) and the folds are on int32.
    @inline(__always)
    private func q4_0GroupSums(_ first: UnsafeRawPointer, _ x: UnsafeRawPointer) -> __m256i {
        let mask = _mm256_set1_epi8(0x0F)
        @inline(__always) func pair(_ k: Int) -> __m256i {
            let a = first + (k &* 18 &+ 2)
            let w = _mm256_set_m128i((a + 72).loadUnaligned(as: __m128i.self), a.loadUnaligned(as: __m128i.self))
            let low = _mm256_and_si256(w, mask), high = _mm256_and_si256(_mm256_srli_epi16(w, 4), mask)
            let xk = x + k &* 64
            #if INTERNKIT_AVX512
                return dpbusd256(dpbusd256(_mm256_setzero_si256(), low, load256(xk)), high, load256(xk + 32))
            #else
                return _mm256_add_epi16(_mm256_maddubs_epi16(low, load256(xk)), _mm256_maddubs_epi16(high, load256(xk + 32)))
            #endif
        }
        #if INTERNKIT_AVX512
            return _mm256_hadd_epi32(_mm256_hadd_epi32(pair(0), pair(1)), _mm256_hadd_epi32(pair(2), pair(3)))
        #else
            let h = _mm256_hadd_epi16(_mm256_hadd_epi16(pair(0), pair(1)), _mm256_hadd_epi16(pair(2), pair(3)))
            return _mm256_madd_epi16(h, _mm256_set1_epi16(1))
        #endif
    }

    @inline(__always)
    private func dotQ4_0(
        _ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>, _ sx: UnsafePointer<Float>, _ blocks: Int
    ) -> Float {
        var acc = _mm256_setzero_ps()
        var b = 0
        while b &+ 8 <= blocks {
            let first = row + b &* 18
            prefetch(first + prefetchDistance, bytes: 8 &* 18)
            let sums = _mm256_cvtepi32_ps(q4_0GroupSums(first, UnsafeRawPointer(xq + b &* 32)))
            #if INTERNKIT_AVX512
                let d = groupScalesByPermute(first, bytes: 18)
            #else
                let d = halves8(first, stride: 18)
            #endif
            acc = _mm256_fmadd_ps(sums, _mm256_mul_ps(d, UnsafeRawPointer(xs + b).loadUnaligned(as: __m256.self)), acc)
            // w = d·(q − 8): the −8·d·s_x of each block.
            acc = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(-8)), UnsafeRawPointer(sx + b).loadUnaligned(as: __m256.self), acc)
            b &+= 8
        }
        var total = laneSum(acc)
        while b < blocks {
            let block = row + b &* 18, d = half(block, 0)
            let sum = unsafeBitCast(nibbleBlockSum(block + 2, xq + b &* 32), to: SIMD8<Int32>.self).wrappedSum()
            total = total.addingProduct(Float(sum), d * xs[b])
            total = total.addingProduct(-8 * d, sx[b])
            b &+= 1
        }
        return total
    }

    /// Q6_K rows: each 32-weight quarter of a half block (one activation block) is assembled as 32 bytes of
    /// the unsigned 6-bit q (as the int16 kernel, without the − 32) and multiplied by its int8 activations
    /// with one `vpmaddubsw` (pairs ≤ 2·63·127) and one `vpmaddwd` by ones: lanes [first sub-block × 4 |
    /// second × 4], converted and scaled by d·sc·d_x in one FMA. The − 32 goes in once per half block: the
    /// eight sub-blocks' d·sc times their −32·d_x·Σq_x, one FMA.
    private func q6KRows(
        _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: Int8Activations, _ T: Int, _ R: Int,
        _ rows: Range<Int>
    ) {
        #if !INTERNKIT_AVX512
            let ones = _mm256_set1_epi16(1)
        #endif
        q6KHalfBlocks(out, weight, x.cols, T, R, rows) { acc, t, low01, low23, high, scales, first in
            let q = UnsafeRawPointer(x.q + t &* x.cols), s = x.scales + t &* x.blocks, offsets = x.sums + t &* 2 &* x.blocks
            var acc = _mm256_fmadd_ps(scales, UnsafeRawPointer(offsets + first &* 2).loadUnaligned(as: __m256.self), acc)
            for quarter in 0..<4 {
                let codes = q6KQuarterCodes(low01, low23, high, quarter)
                let index = q6KScaleIndex(quarter)
                let ab = first &+ quarter
                #if INTERNKIT_AVX512
                    let sum = dpbusd256(_mm256_setzero_si256(), codes, load256(q + ab &* 32))
                #else
                    let sum = _mm256_madd_epi16(_mm256_maddubs_epi16(codes, load256(q + ab &* 32)), ones)
                #endif
                let scale = _mm256_mul_ps(_mm256_permutevar8x32_ps(scales, index), _mm256_set1_ps(s[ab]))
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, acc)
            }
            return acc
        }
    }
#else
    private func dotQ8_0(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>, _ blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * 34
            var sum: Int32 = 0
            for i in 0..<32 { sum &+= Int32(block.load(fromByteOffset: 2 + i, as: Int8.self)) &* Int32(xq[b * 32 + i]) }
            acc += half(block, 0) * xs[b] * Float(sum)
        }
        return acc
    }

    private func dotQ4_0(
        _ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>, _ sx: UnsafePointer<Float>, _ blocks: Int
    ) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * 18
            var sum: Int32 = 0
            for i in 0..<16 {
                let byte = block.load(fromByteOffset: 2 + i, as: UInt8.self)
                sum &+= Int32(byte & 0xF) &* Int32(xq[b * 32 + i])
                sum &+= Int32(byte >> 4) &* Int32(xq[b * 32 + 16 + i])
            }
            let d = half(block, 0)
            acc += d * xs[b] * Float(sum) - 8 * d * sx[b]
        }
        return acc
    }
    /// Q6_K rows in scalar code: Σ over sub-blocks of d·sc·(d_x·Σ q·q_x − 32·d_x·Σq_x).
    private func q6KRows(
        _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: Int8Activations, _ T: Int, _ R: Int,
        _ rows: Range<Int>
    ) {
        let C = x.cols, superBlocks = C / 256, rowBytes = superBlocks * 210
        for r in rows {
            let row = weight + r * rowBytes
            for t in 0..<T {
                var acc: Float = 0
                for sb in 0..<superBlocks {
                    let block = row + sb * 210
                    let d = half(block, 208)
                    for sub in 0..<16 {
                        let sc = Float(block.load(fromByteOffset: 192 + sub, as: Int8.self))
                        let ab = sb * 8 + sub / 2
                        var dot: Int32 = 0
                        for i in 0..<16 {
                            let element = sub * 16 + i
                            dot &+= Int32(q6KCode(block, element)) &* Int32(x.q[t * C + sb * 256 + element])
                        }
                        acc += d * sc * (x.scales[t * x.blocks + ab] * Float(dot) + x.sums[t * 2 * x.blocks + sb * 16 + sub])
                    }
                }
                out[t * R + r] = acc
            }
        }
    }

    /// The unsigned 6-bit code of element `i` (0..<256) of a Q6_K block (ggml's layout).
    private func q6KCode(_ block: UnsafeRawPointer, _ i: Int) -> Int {
        let h = i / 128, j = i % 128, quarter = j / 32, l = j % 32
        let low = block.load(fromByteOffset: h * 64 + (quarter & 1) * 32 + l, as: UInt8.self)
        let nibble = quarter < 2 ? low & 0xF : low >> 4
        let high = (block.load(fromByteOffset: 128 + h * 32 + l, as: UInt8.self) >> (2 * quarter)) & 3
        return Int(nibble) | Int(high) << 4
    }
#endif

// MARK: - Naive twin

/// The reference for `matMulQuantizedInt8`: the same quantized activations, every weight decoded alone
/// by `quantizedElementReference`, products accumulated in Double.
public func matMulQuantizedInt8Reference(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer, type: BlockQuantization,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int
) {
    var q = [Int8](repeating: 0, count: tokens * cols)
    var scales = [Float](repeating: 0, count: tokens * cols / 32)
    quantizeActivations(input, count: tokens * cols, q: &q, scales: &scales)
    let rowBytes = type.rowBytes(cols)
    for t in 0..<tokens {
        for r in 0..<rows {
            var sum = 0.0
            for c in 0..<cols {
                let w = Double(quantizedElementReference(weight + r * rowBytes, type: type, index: c))
                sum += w * Double(q[t * cols + c]) * Double(scales[(t * cols + c) / 32])
            }
            out[t * rows + r] = Float(sum)
        }
    }
}
