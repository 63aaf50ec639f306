// Products of Q8_0/Q4_0/Q4_1 weights with activations quantized to 16 bits: the default for these block
// types on x86-64 built for Haswell (INTERNKIT_FMA). Why 16 bits: decode is bound by how fast the weights
// turn into products, and `vpmaddwd` multiplies 16 int16 pairs per instruction straight from the unpacked
// nibbles/bytes, where the f32 path must widen every 8 weights to f32 first (twice the instructions).
// Unlike llama.cpp's 8-bit activations (rounding error up to max|x|/254 per block, enough to change
// SmolLM2's greedy answer), 16 bits round by at most max|x|/65534: 258× smaller, below f16 precision, so
// the result stays within ~1e-5 of the exact product of the de-quantized weights (tested).
//   out[t, r] = Σ_blocks [ d_w·d_x · Σ_i q_w[i]·q_x[i] + m_w · s_x ]
// with per block of 32: x ≈ d_x·q_x (d_x = max|x|/32767), s_x = d_x·Σ q_x, and w = d_w·q_w + m_w
// (Q8_0: q_w int8, m_w = 0; Q4_0: q_w the nibble, m_w = −8·d_w; Q4_1: the nibble, m_w from the block).
// Every output runs the same code whatever the number of tokens in the call (`rowDot`): groups of eight
// blocks whose exact integer sums are reduced into one vector and scaled at once, then the leftover blocks
// one by one, so a token's result does not depend on the batch (the server's batch invariance).
// Elsewhere (arm64, portable x86-64) the model uses the f32 path of QuantizedMatMul.swift instead.
#if INTERNKIT_FMA
    import _Builtin_intrinsics.intel
#endif

/// Whether this build has the vectorized `matMulQuantizedInt16` (otherwise the f32 path is used).
public let int16ActivationsAreVectorized: Bool = {
    #if INTERNKIT_FMA
        true
    #else
        false
    #endif
}()

/// Whether `matMulQuantizedInt16` supports `type`.
public func supportsInt16Activations(_ type: BlockQuantization) -> Bool { type != .q4_K }

/// Quantizes `count` activations (a multiple of 32) into int16 blocks of 32: `q` gets `count` values,
/// `scales` and `sums` one per block (q·scale ≈ x; sum = scale·Σq, the block sum of the rounded values).
public func quantizeActivations16(
    _ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int16>,
    scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>
) {
    precondition(count % 32 == 0, "activations must come in blocks of 32")
    for b in 0..<(count / 32) {
        let xb = x + b &* 32
        #if INTERNKIT_FMA
            // Intrinsics: the generic SIMD conversions below are not specialized into vector code here.
            let d = blockAbsMax(xb) / 32767
            let id = _mm256_set1_ps(d != 0 ? 1 / d : 0)
            var total = _mm256_setzero_si256()
            for i in stride(from: 0, to: 32, by: 16) {
                // cvtps rounds to nearest even (the default MXCSR mode), as the portable path does.
                let lo = _mm256_cvtps_epi32(_mm256_mul_ps(UnsafeRawPointer(xb + i).loadUnaligned(as: __m256.self), id))
                let hi = _mm256_cvtps_epi32(_mm256_mul_ps(UnsafeRawPointer(xb + i + 8).loadUnaligned(as: __m256.self), id))
                total = _mm256_add_epi32(total, _mm256_add_epi32(lo, hi))
                // packs works per 128-bit lane: put the 64-bit quarters back into element order.
                let packed = _mm256_permutevar8x32_epi32(_mm256_packs_epi32(lo, hi), _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7))
                UnsafeMutableRawPointer(q + (b &* 32 &+ i)).storeBytes(of: packed, as: __m256i.self)
            }
            scales[b] = d
            sums[b] = d * Float(unsafeBitCast(total, to: SIMD8<Int32>.self).wrappedSum())
        #else
            var amax = SIMD8<Float>()
            for i in stride(from: 0, to: 32, by: 8) {
                let v = load8(xb, i)
                amax = pointwiseMax(amax, pointwiseMax(v, -v))
            }
            let d = amax.max() / 32767
            let id: Float = d != 0 ? 1 / d : 0
            var total = SIMD8<Int32>()
            for i in stride(from: 0, to: 32, by: 8) {
                let v = SIMD8<Int32>(load8(xb, i) * id, rounding: .toNearestOrEven)
                total &+= v
                UnsafeMutableRawPointer(q + (b &* 32 &+ i)).storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: v), as: SIMD8<Int16>.self)
            }
            scales[b] = d
            sums[b] = d * Float(total.wrappedSum())
        #endif
    }
}

/// out (T, R) = x (T, C) · Wᵀ with W in Q8_0, Q4_0 or Q4_1 blocks and x quantized to 16 bits per block of
/// 32; threaded over rows when `pool` is given.
public func matMulQuantizedInt16(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer, type: BlockQuantization,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    precondition(
        supportsInt16Activations(type) && cols % type.blockSize == 0, "int16 activations need q8_0/q4_0/q4_1/q6_K and whole blocks")
    let blocks = cols / 32
    // One allocation per call for the quantized activations (on the stack when small, as in decode).
    withUnsafeTemporaryAllocation(byteCount: tokens * cols * 2 + tokens * blocks * 8, alignment: 32) { raw in
        let q = raw.baseAddress!.bindMemory(to: Int16.self, capacity: tokens * cols)
        let scales = (raw.baseAddress! + tokens * cols * 2).bindMemory(to: Float.self, capacity: 2 * tokens * blocks)
        let sums = scales + tokens * blocks
        quantizeActivations16(input, count: tokens * cols, q: q, scales: scales, sums: sums)
        #if INTERNKIT_AVX512
            if type != .q6_K { interleavePairs(q, tokens: tokens, cols: cols) }
        #elseif INTERNKIT_FMA
            switch type {
            case .q8_0: arrange(q, tokens: tokens, cols: cols, layout: ActivationLayout.bytePairs)
            case .q4_0, .q4_1: arrange(q, tokens: tokens, cols: cols, layout: ActivationLayout.nibblePairs)
            case .q6_K: arrange(q, tokens: tokens, cols: cols, layout: ActivationLayout.evenOdd)
            default: break
            }
        #endif
        let x = Int16Activations(q: q, scales: scales, sums: sums, cols: cols)
        let body = { (range: Range<Int>, _: Int) in
            switch type {
            case .q8_0: int16Rows(Q8_0Block.self, out, weight, x, tokens, rows, range)
            case .q4_0: int16Rows(Q4_0Block.self, out, weight, x, tokens, rows, range)
            case .q6_K: q6KRows(out, weight, x, tokens, rows, range)
            default: int16Rows(Q4_1Block.self, out, weight, x, tokens, rows, range)
            }
        }
        if let pool {
            pool.parallelFor(rows, granularity: 4, body)
        } else {
            body(0..<rows, 0)
        }
    }
}

/// Reorders each token's quantized activations for the 512-bit kernel: in every whole group of eight
/// blocks, each pair of blocks (a, b) becomes [a0..<16, b0..<16, a16..<32, b16..<32] (the halves of the
/// two blocks' weights that `unpackPair` puts in one register); blocks after the last whole group stay.
func interleavePairs(_ q: UnsafeMutablePointer<Int16>, tokens: Int, cols: Int) {
    let groups = cols / 256
    for t in 0..<tokens {
        for pair in 0..<(groups &* 4) {
            // Swap a16..<32 with b0..<16 (16 int16 each).
            let offset: Int = t &* cols &+ pair &* 64 &+ 16
            let aHigh = UnsafeMutableRawPointer(q + offset), bLow = aHigh + 32
            let saved = aHigh.loadUnaligned(as: SIMD16<Int16>.self)
            aHigh.storeBytes(of: bLow.loadUnaligned(as: SIMD16<Int16>.self), as: SIMD16<Int16>.self)
            bLow.storeBytes(of: saved, as: SIMD16<Int16>.self)
        }
    }
}

/// Orders of the activations within a group of 256 (eight blocks) for the AVX2 kernels, which split the
/// weights' bytes as 16-bit words (shifts and masks) instead of widening them byte by byte (`vpmovzxbw`
/// and `vphaddd` trees compete for one shuffle port): entry i is the source index of position i.
enum ActivationLayout {
    /// Q4_0/Q4_1: a word of nibble bytes 2j, 2j + 1 holds weights 2j, 2j + 16, 2j + 1, 2j + 17 (bits 0, 4, 8,
    /// 12). Blocks k and k + 4 share one register (16 bytes each), so per pair k: four runs of 16, the
    /// even, even + 16, odd and odd + 16 activations of block k (8) then of block k + 4 (8). Three `vphaddd`
    /// then leave the eight block sums in block order.
    static let nibblePairs: [Int] = (0..<256).map { i in
        let pair = i / 64, run = i % 64 / 16, lane = i % 16
        let block = lane < 8 ? pair : pair + 4, j = lane % 8
        let element = [2 * j, 2 * j + 16, 2 * j + 1, 2 * j + 17][run]
        return block * 32 + element
    }
    /// Q8_0: a word of weight bytes 2j, 2j + 1 holds weights 2j and 2j + 1 (low and high byte). Blocks k and
    /// k + 4 share two registers (bytes 0–15 of each, then bytes 16–31), so per pair k: four runs of 16, the
    /// even and odd activations of the first 16 and of the last 16, each of block k (8) then of block k + 4
    /// (8). Three `vphaddd` then leave the eight block sums in block order, as for the nibble pairs.
    static let bytePairs: [Int] = (0..<256).map { i in
        let pair = i / 64, run = i % 64 / 16, lane = i % 16
        let block = lane < 8 ? pair : pair + 4, j = lane % 8
        return block * 32 + run / 2 * 16 + 2 * j + run % 2
    }
    /// Q6_K: per block of 32, the even activations then the odd ones (the even and odd bytes of a 32-weight
    /// quarter, sign-extended from words).
    static let evenOdd: [Int] = (0..<256).map { i in i / 32 * 32 + (i % 32 < 16 ? 2 * (i % 16) : 2 * (i % 16) + 1) }
}

/// Reorders each token's quantized activations (int16 or int8) by `layout` in every whole group of 256; the
/// columns after the last whole group keep their order (the kernels take those blocks one by one).
func arrange<Code: FixedWidthInteger>(_ q: UnsafeMutablePointer<Code>, tokens: Int, cols: Int, layout: [Int]) {
    withUnsafeTemporaryAllocation(of: Code.self, capacity: 256) { group in
        layout.withUnsafeBufferPointer { source in
            for t in 0..<tokens {
                for g in 0..<(cols / 256) {
                    let base = q + (t &* cols &+ g &* 256)
                    for i in 0..<256 { group[i] = base[i] }
                    for i in 0..<256 { base[i] = group[source[i]] }
                }
            }
        }
    }
}

/// Tokens quantized per block of 32: codes, one scale per block and the kernels' block sums.
struct QuantizedActivations<Code: FixedWidthInteger> {
    let q: UnsafePointer<Code>
    let scales: UnsafePointer<Float>
    let sums: UnsafePointer<Float>
    let cols: Int
    var blocks: Int { cols &>> 5 }
}

/// Tokens quantized by `quantizeActivations16`.
typealias Int16Activations = QuantizedActivations<Int16>

#if INTERNKIT_FMA
    /// A 32-weight block type unpacked to two vectors of 16 int16 weights.
    protocol Int16Block {
        static var bytes: Int { get }
        /// q_w[0..<16] and q_w[16..<32].
        static func unpack(_ block: UnsafeRawPointer) -> (__m256i, __m256i)
        /// (d_w, m_w).
        static func scaleAndOffset(_ block: UnsafeRawPointer) -> (Float, Float)
        /// m_w: none (Q8_0), −8·d_w (Q4_0) or the f16 at byte 2 (Q4_1).
        static var offset: BlockOffset { get }
        /// Where a block's 16 bytes of nibbles start (Q4_0, Q4_1); nil for Q8_0.
        static var nibbleStart: Int? { get }
        /// d_w of the eight blocks of a group starting at `first`.
        static func groupScales(_ first: UnsafeRawPointer) -> __m256
        #if INTERNKIT_AVX512
            /// Blocks a and b as int16 for 512-bit products: ([a0..<16, b0..<16], [a16..<32, b16..<32]).
            static func unpackPair(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> (__m512i, __m512i)
        #endif
    }

    enum BlockOffset { case none, minusEightScales, stored }

    extension Int16Block {
        @inline(__always) static func groupScales(_ first: UnsafeRawPointer) -> __m256 { halves8(first, stride: bytes) }
    }

    #if INTERNKIT_AVX512
        /// The f16 scales at the start of eight blocks of `bytes` bytes, picked out of whole 64-byte loads with
        /// one vpermt2w per 128 bytes (instead of eight 2-byte inserts, which all compete for one port).
        /// Reads only bytes of the group: 128 bytes for Q4_0 (a group is 144), 256 for Q8_0 (272).
        @inline(__always)
        func groupScalesByPermute(_ first: UnsafeRawPointer, bytes: Int) -> __m256 {
            if bytes * 7 < 128 {
                assert(bytes == 18, "only Q4_0 groups fit one 128-byte window")
                let index = unsafeBitCast(
                    SIMD32<Int16>(0, 9, 18, 27, 36, 45, 54, 63, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), to: __m512i.self)
                let halves = _mm512_permutex2var_epi16(
                    first.loadUnaligned(as: __m512i.self), index, (first + 64).loadUnaligned(as: __m512i.self))
                return _mm256_cvtph_ps(_mm512_castsi512_si128(halves))
            }
            assert(bytes == 34, "two 128-byte windows: Q8_0")
            // Blocks 0–3 from the first 128 bytes, 4–7 from the 128 bytes at block 4.
            let index = unsafeBitCast(
                SIMD32<Int16>(0, 17, 34, 51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), to: __m512i.self)
            let second = first + 4 &* bytes
            let low = _mm512_permutex2var_epi16(first.loadUnaligned(as: __m512i.self), index, (first + 64).loadUnaligned(as: __m512i.self))
            let high = _mm512_permutex2var_epi16(second.loadUnaligned(as: __m512i.self), index, (second + 64).loadUnaligned(as: __m512i.self))
            return _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm512_castsi512_si128(low), _mm512_castsi512_si128(high)))
        }
    #endif

    enum Q8_0Block: Int16Block {
        static var bytes: Int { 34 }
        @inline(__always) static func unpack(_ block: UnsafeRawPointer) -> (__m256i, __m256i) {
            (
                _mm256_cvtepi8_epi16((block + 2).loadUnaligned(as: __m128i.self)),
                _mm256_cvtepi8_epi16((block + 18).loadUnaligned(as: __m128i.self))
            )
        }
        @inline(__always) static func scaleAndOffset(_ block: UnsafeRawPointer) -> (Float, Float) { (half(block, 0), 0) }
        static var offset: BlockOffset { .none }
        static var nibbleStart: Int? { nil }
        #if INTERNKIT_AVX512
            @inline(__always) static func groupScales(_ first: UnsafeRawPointer) -> __m256 { groupScalesByPermute(first, bytes: 34) }
            @inline(__always) static func unpackPair(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> (__m512i, __m512i) {
                (
                    _mm512_cvtepi8_epi16(_mm256_set_m128i((b + 2).loadUnaligned(as: __m128i.self), (a + 2).loadUnaligned(as: __m128i.self))),
                    _mm512_cvtepi8_epi16(_mm256_set_m128i((b + 18).loadUnaligned(as: __m128i.self), (a + 18).loadUnaligned(as: __m128i.self)))
                )
            }
        #endif
    }

    @inline(__always)
    private func nibbles(_ p: UnsafeRawPointer) -> (__m256i, __m256i) {
        let bytes = p.loadUnaligned(as: __m128i.self), mask = _mm_set1_epi8(0x0F)
        return (
            _mm256_cvtepu8_epi16(_mm_and_si128(bytes, mask)),
            _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask))
        )
    }

    #if INTERNKIT_AVX512
        /// The nibbles of two blocks whose 16 bytes start at a and b: byte i holds weights i (low) and 16 + i.
        @inline(__always)
        private func nibblePair(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> (__m512i, __m512i) {
            let words = _mm512_cvtepu8_epi16(_mm256_set_m128i(b.loadUnaligned(as: __m128i.self), a.loadUnaligned(as: __m128i.self)))
            return (_mm512_and_si512(words, _mm512_set1_epi16(0x0F)), _mm512_srli_epi16(words, 4))
        }
    #endif

    enum Q4_0Block: Int16Block {
        static var bytes: Int { 18 }
        @inline(__always) static func unpack(_ block: UnsafeRawPointer) -> (__m256i, __m256i) { nibbles(block + 2) }
        @inline(__always) static func scaleAndOffset(_ block: UnsafeRawPointer) -> (Float, Float) {
            let d = half(block, 0)
            return (d, -8 * d)
        }
        static var offset: BlockOffset { .minusEightScales }
        static var nibbleStart: Int? { 2 }
        #if INTERNKIT_AVX512
            @inline(__always) static func groupScales(_ first: UnsafeRawPointer) -> __m256 { groupScalesByPermute(first, bytes: 18) }
            @inline(__always) static func unpackPair(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> (__m512i, __m512i) {
                nibblePair(a + 2, b + 2)
            }
        #endif
    }

    enum Q4_1Block: Int16Block {
        static var bytes: Int { 20 }
        @inline(__always) static func unpack(_ block: UnsafeRawPointer) -> (__m256i, __m256i) { nibbles(block + 4) }
        @inline(__always) static func scaleAndOffset(_ block: UnsafeRawPointer) -> (Float, Float) { (half(block, 0), half(block, 2)) }
        static var offset: BlockOffset { .stored }
        static var nibbleStart: Int? { 4 }
        #if INTERNKIT_AVX512
            @inline(__always) static func unpackPair(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> (__m512i, __m512i) {
                nibblePair(a + 4, b + 4)
            }
        #endif
    }

    /// The 32 unsigned 6-bit codes of quarter `quarter` (0..<4) of a Q6_K half block, ggml's layout: the low
    /// (quarters 0, 1) or high (2, 3) nibbles of `low01` (quarters 0, 2) or `low23` (1, 3), and bits
    /// 2·quarter, 2·quarter + 1 of `high` as bits 4 and 5. Callers unroll over `quarter`, so the choices fold.
    @inline(__always)
    func q6KQuarterCodes(_ low01: __m256i, _ low23: __m256i, _ high: __m256i, _ quarter: Int) -> __m256i {
        let mask = _mm256_set1_epi8(0x0F), highBits = _mm256_set1_epi8(0x30)
        let lowBytes = quarter & 1 == 0 ? low01 : low23
        let nibble = quarter < 2 ? _mm256_and_si256(lowBytes, mask) : _mm256_and_si256(_mm256_srli_epi16(lowBytes, 4), mask)
        let top: __m256i
        switch quarter {
        case 0: top = _mm256_and_si256(_mm256_slli_epi16(high, 4), highBits)
        case 1: top = _mm256_and_si256(_mm256_slli_epi16(high, 2), highBits)
        case 2: top = _mm256_and_si256(high, highBits)
        default: top = _mm256_and_si256(_mm256_srli_epi16(high, 2), highBits)
        }
        return _mm256_or_si256(nibble, top)
    }

    /// d·sc for the eight sub-blocks of a Q6_K half block whose int8 scales start at `sc`.
    @inline(__always)
    func q6KHalfScales(_ d: __m256, _ sc: UnsafeRawPointer) -> __m256 {
        _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(sc.loadUnaligned(as: Int64.self)))))
    }

    /// The permute that spreads the half-block scales over quarter `quarter`'s int32 lanes: scale 2·quarter
    /// for the first 16 weights (lanes 0–3), 2·quarter + 1 for the last 16 (lanes 4–7).
    @inline(__always)
    func q6KScaleIndex(_ quarter: Int) -> __m256i {
        let k = Int32(2 &* quarter)
        return _mm256_setr_epi32(k, k, k, k, k &+ 1, k &+ 1, k &+ 1, k &+ 1)
    }

    /// The walk of the AVX2 Q6_K kernels (int16 and int8 activations): for every row and token, each half
    /// block (128 weights, four quarters of 32) as its three code registers (see `q6KQuarterCodes`) and its
    /// eight sub-block scales d·sc, handed to `body` with the token and the index of the half block's first
    /// activation block; out[t, r] is the lane sum of what `body` accumulates.
    @inline(__always)
    func q6KHalfBlocks(
        _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ C: Int, _ T: Int, _ R: Int, _ rows: Range<Int>,
        _ body: (_ acc: __m256, _ t: Int, _ low01: __m256i, _ low23: __m256i, _ high: __m256i, _ scales: __m256, _ first: Int) -> __m256
    ) {
        let superBlocks = C / 256, rowBytes = superBlocks &* 210
        for r in rows {
            let row = weight + r &* rowBytes
            for t in 0..<T {
                var acc = _mm256_setzero_ps()
                for sb in 0..<superBlocks {
                    let block = row + sb &* 210
                    prefetch(block + prefetchDistance, bytes: 210)
                    let d = _mm256_set1_ps(half(block, 208))
                    for h in 0..<2 {
                        let ql = block + h &* 64, qh = block + (128 &+ h &* 32), sc = block + (192 &+ h &* 8)
                        acc = body(
                            acc, t, ql.loadUnaligned(as: __m256i.self), (ql + 32).loadUnaligned(as: __m256i.self),
                            qh.loadUnaligned(as: __m256i.self), q6KHalfScales(d, sc), sb &* 8 &+ h &* 4)
                    }
                }
                out[t &* R &+ r] = laneSum(acc)
            }
        }
    }

    /// max |x_i| over the 32 activations of one block at `xb`.
    @inline(__always)
    func blockAbsMax(_ xb: UnsafePointer<Float>) -> Float {
        let signless = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF))
        var amax = _mm256_setzero_ps()
        for i in stride(from: 0, to: 32, by: 8) {
            amax = _mm256_max_ps(amax, _mm256_and_ps(UnsafeRawPointer(xb + i).loadUnaligned(as: __m256.self), signless))
        }
        // In registers: the generic `SIMD8.max()` is a call per block (1% of a long prefill).
        return laneMax(unsafeBitCast(amax, to: SIMD8<Float>.self))
    }

    /// The eight int32 lanes of one block's products, summed exactly.
    @inline(__always)
    private func blockSum(_ w: (__m256i, __m256i), _ x: UnsafePointer<Int16>) -> __m256i {
        _mm256_add_epi32(
            _mm256_madd_epi16(w.0, UnsafeRawPointer(x).loadUnaligned(as: __m256i.self)),
            _mm256_madd_epi16(w.1, UnsafeRawPointer(x + 16).loadUnaligned(as: __m256i.self)))
    }

    /// Eight f16 values, one per block, `stride` bytes apart.
    @inline(__always)
    func halves8(_ p: UnsafeRawPointer, stride: Int) -> __m256 {
        func h(_ i: Int) -> Int16 { p.loadUnaligned(fromByteOffset: i &* stride, as: Int16.self) }
        return _mm256_cvtph_ps(_mm_setr_epi16(h(0), h(1), h(2), h(3), h(4), h(5), h(6), h(7)))
    }

    #if INTERNKIT_AVX512
        /// The index vectors that fold four pair products (16 int32 lanes: 8 for each block of the pair) into
        /// eight block sums with lane-crossing permutes (vpermt2d), three levels of halving.
        struct PairReduction {
            let quarters0: __m512i, quarters1: __m512i, eighths0: __m512i, eighths1: __m512i, evenOdd: __m512i
            // Lane i takes lanes of 4 (then 2) consecutive products: the first or second half of each run.
            // Literal vectors, so they fold into constants (a loop filling them would run per call).
            @inline(__always) init() {
                quarters0 = unsafeBitCast(SIMD16<Int32>(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27), to: __m512i.self)
                quarters1 = unsafeBitCast(SIMD16<Int32>(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31), to: __m512i.self)
                eighths0 = unsafeBitCast(SIMD16<Int32>(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29), to: __m512i.self)
                eighths1 = unsafeBitCast(SIMD16<Int32>(2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31), to: __m512i.self)
                evenOdd = unsafeBitCast(SIMD16<Int32>(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15), to: __m512i.self)
            }
        }

        /// The exact integer sums of eight blocks (lane i = block i) against activations laid out by
        /// `interleavePairs`: pair k's products accumulate in one register (vpdpwssd), then three permute-and-add
        /// levels leave one int32 per block.
        @inline(__always)
        private func groupSums512<B: Int16Block>(
            _: B.Type, _ first: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ reduce: PairReduction
        ) -> __m256i {
            @inline(__always) func pair(_ k: Int) -> __m512i {
                let a = first + (2 &* k) &* B.bytes
                let (low, high) = B.unpackPair(a, a + B.bytes)
                let x = UnsafeRawPointer(xq + k &* 64)
                return _mm512_dpwssd_epi32(_mm512_madd_epi16(low, x.loadUnaligned(as: __m512i.self)), high, (x + 64).loadUnaligned(as: __m512i.self))
            }
            let p0 = pair(0), p1 = pair(1), p2 = pair(2), p3 = pair(3)
            let q0 = _mm512_add_epi32(_mm512_permutex2var_epi32(p0, reduce.quarters0, p1), _mm512_permutex2var_epi32(p0, reduce.quarters1, p1))
            let q1 = _mm512_add_epi32(_mm512_permutex2var_epi32(p2, reduce.quarters0, p3), _mm512_permutex2var_epi32(p2, reduce.quarters1, p3))
            let r = _mm512_add_epi32(_mm512_permutex2var_epi32(q0, reduce.eighths0, q1), _mm512_permutex2var_epi32(q0, reduce.eighths1, q1))
            let split = unsafeBitCast(_mm512_permutexvar_epi32(reduce.evenOdd, r), to: SIMD16<Int32>.self)
            return unsafeBitCast(split.lowHalf &+ split.highHalf, to: __m256i.self)
        }
    #endif

    /// One output: row · token. Blocks go in groups of eight: their exact integer sums are reduced into
    /// one vector (lane i = block i), converted once and scaled by eight d_w·d_x at once, so the per-block
    /// scalar work (f16 scales, broadcasts) is paid per group; the leftover blocks are added one by one.
    /// The same code runs for every token whatever the batch.
    @inline(__always)
    private func rowDot<B: Int16Block>(
        _: B.Type, _ row: UnsafeRawPointer, _ q: UnsafePointer<Int16>, _ s: UnsafePointer<Float>,
        _ sx: UnsafePointer<Float>, _ blocks: Int
    ) -> Float {
        let constants = GroupConstants()
        var acc = _mm256_setzero_ps()
        var b = 0
        while b &+ 8 <= blocks {
            acc = groupStep(B.self, acc, row, q, s, sx, b, constants)
            b &+= 8
        }
        return leftoverBlocks(B.self, laneSum(acc), row, q, s, sx, b, blocks)
    }

    /// The constant vectors of a group's reduction (none on AVX2: its pair sums reduce by `vphaddd` alone).
    struct GroupConstants {
        #if INTERNKIT_AVX512
            let reduce = PairReduction()
        #endif
        @inline(__always) init() {}
    }

    /// `acc` plus the eight blocks from block `b` of `row` (lane i: block b + i).
    @inline(__always)
    private func groupStep<B: Int16Block>(
        _: B.Type, _ acc: __m256, _ row: UnsafeRawPointer, _ q: UnsafePointer<Int16>, _ s: UnsafePointer<Float>,
        _ sx: UnsafePointer<Float>, _ b: Int, _ constants: GroupConstants
    ) -> __m256 {
        let first = row + b &* B.bytes, xq = q + b &* 32
        prefetch(first + prefetchDistance, bytes: 8 &* B.bytes)
        #if INTERNKIT_AVX512
            let sums = _mm256_cvtepi32_ps(groupSums512(B.self, first, xq, constants.reduce))
        #else
            let sums = _mm256_cvtepi32_ps(
                B.nibbleStart.map { nibblePairSums(first + $0, B.bytes, xq) } ?? bytePairSums(first + 2, B.bytes, xq))  // + 2: past the f16 scale
        #endif
        return scaledGroup(B.self, acc, first, sums, s, sx, b)
    }

    /// `acc` plus a group's exact block sums (lane i: block b + i) times d_w·d_x, plus m_w·s_x.
    @inline(__always)
    private func scaledGroup<B: Int16Block>(
        _: B.Type, _ acc: __m256, _ first: UnsafeRawPointer, _ sums: __m256, _ s: UnsafePointer<Float>,
        _ sx: UnsafePointer<Float>, _ b: Int
    ) -> __m256 {
        let d = B.groupScales(first)
        let dx = UnsafeRawPointer(s + b).loadUnaligned(as: __m256.self)
        var acc = _mm256_fmadd_ps(sums, _mm256_mul_ps(d, dx), acc)
        let sxv = UnsafeRawPointer(sx + b).loadUnaligned(as: __m256.self)
        switch B.offset {
        case .none: break
        case .minusEightScales: acc = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(-8)), sxv, acc)
        case .stored: acc = _mm256_fmadd_ps(halves8(first + 2, stride: B.bytes), sxv, acc)
        }
        return acc
    }

    #if !INTERNKIT_AVX512
        /// The exact integer sums of eight Q8_0 blocks (lane i = block i; `weights` at block 0's int8 weights,
        /// `stride` bytes per block) against activations in `ActivationLayout.bytePairs` order: blocks k and k + 4
        /// share two registers, whose words are split into their even and odd bytes by shifts, four products,
        /// three `vphaddd` (no lane-crossing `vpmovsxbw`/`vpermd`). `Benchmarks/q8_0-avx2` on 2 Zen 1 cores:
        /// within a few percent of widening each half block (both 11–16 Gweights/s, near the 17–21 the bytes
        /// alone stream at) and ahead of llama.cpp's int8 kernel (10–13); the loads' prefetch decides more.
        @inline(__always)
        private func bytePairSums(_ weights: UnsafeRawPointer, _ stride: Int, _ xq: UnsafePointer<Int16>) -> __m256i {
            @inline(__always) func pair(_ k: Int) -> __m256i {
                let a = weights + k &* stride, b = a + 4 &* stride
                let low = _mm256_set_m128i(b.loadUnaligned(as: __m128i.self), a.loadUnaligned(as: __m128i.self))
                let high = _mm256_set_m128i((b + 16).loadUnaligned(as: __m128i.self), (a + 16).loadUnaligned(as: __m128i.self))
                let x = UnsafeRawPointer(xq + k &* 64)
                // Sign-extended in place: the even byte of each word shifted up and back, the odd one down.
                return _mm256_add_epi32(
                    _mm256_add_epi32(
                        _mm256_madd_epi16(_mm256_srai_epi16(_mm256_slli_epi16(low, 8), 8), x.loadUnaligned(as: __m256i.self)),
                        _mm256_madd_epi16(_mm256_srai_epi16(low, 8), (x + 32).loadUnaligned(as: __m256i.self))),
                    _mm256_add_epi32(
                        _mm256_madd_epi16(_mm256_srai_epi16(_mm256_slli_epi16(high, 8), 8), (x + 64).loadUnaligned(as: __m256i.self)),
                        _mm256_madd_epi16(_mm256_srai_epi16(high, 8), (x + 96).loadUnaligned(as: __m256i.self))))
            }
            return pairSums(pair)
        }

        /// Eight block sums in block order from the products of the four pairs (pair k: [block k (4 lanes) |
        /// block k + 4 (4 lanes)]; hadd works per 128-bit half).
        @inline(__always)
        private func pairSums(_ pair: (Int) -> __m256i) -> __m256i {
            _mm256_hadd_epi32(_mm256_hadd_epi32(pair(0), pair(1)), _mm256_hadd_epi32(pair(2), pair(3)))
        }

        /// The exact integer sums of eight nibble blocks (lane i = block i; `nibbles` at block 0's nibbles,
        /// `stride` bytes per block) against activations in `ActivationLayout.nibblePairs` order: blocks k and
        /// k + 4 in one register, their words split by shifts and masks, four products, three `vphaddd`.
        @inline(__always)
        private func nibblePairSums(_ nibbles: UnsafeRawPointer, _ stride: Int, _ xq: UnsafePointer<Int16>) -> __m256i {
            let low4 = _mm256_set1_epi16(0x000F)
            @inline(__always) func pair(_ k: Int) -> __m256i {
                let a = nibbles + k &* stride
                let w = _mm256_set_m128i((a + 4 &* stride).loadUnaligned(as: __m128i.self), a.loadUnaligned(as: __m128i.self))
                let x = UnsafeRawPointer(xq + k &* 64)
                let even = _mm256_and_si256(w, low4), even16 = _mm256_and_si256(_mm256_srli_epi16(w, 4), low4)
                let odd = _mm256_and_si256(_mm256_srli_epi16(w, 8), low4), odd16 = _mm256_srli_epi16(w, 12)
                return _mm256_add_epi32(
                    _mm256_add_epi32(
                        _mm256_madd_epi16(even, x.loadUnaligned(as: __m256i.self)),
                        _mm256_madd_epi16(even16, (x + 32).loadUnaligned(as: __m256i.self))),
                    _mm256_add_epi32(
                        _mm256_madd_epi16(odd, (x + 64).loadUnaligned(as: __m256i.self)),
                        _mm256_madd_epi16(odd16, (x + 96).loadUnaligned(as: __m256i.self))))
            }
            return pairSums(pair)
        }
    #endif

    /// `total` plus blocks `from..<blocks` of `row`, one by one (fewer than eight).
    @inline(__always)
    private func leftoverBlocks<B: Int16Block>(
        _: B.Type, _ total: Float, _ row: UnsafeRawPointer, _ q: UnsafePointer<Int16>, _ s: UnsafePointer<Float>,
        _ sx: UnsafePointer<Float>, _ from: Int, _ blocks: Int
    ) -> Float {
        var total = total
        var b = from
        while b < blocks {
            let block = row + b &* B.bytes
            let (d, m) = B.scaleAndOffset(block)
            let sum = Float(unsafeBitCast(blockSum(B.unpack(block), q + b &* 32), to: SIMD8<Int32>.self).wrappedSum())
            total = total.addingProduct(sum, d * s[b])
            total = total.addingProduct(m, sx[b])
            b &+= 1
        }
        return total
    }

    private func int16Rows<B: Int16Block>(
        _: B.Type, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: Int16Activations,
        _ T: Int, _ R: Int, _ rows: Range<Int>
    ) {
        let blocks = x.blocks, C = x.cols, rowBytes = blocks &* B.bytes
        for r in rows {
            let row = weight + r &* rowBytes
            for t in 0..<T {
                out[t &* R &+ r] = rowDot(B.self, row, x.q + t &* C, x.scales + t &* blocks, x.sums + t &* blocks, blocks)
            }
        }
    }

    #if INTERNKIT_AVX512
        /// Q6_K rows, 512-bit: each 32-weight quarter of a half block (one activation block, two int8 scales)
        /// is assembled in one register: low nibbles and high bits as bytes (256-bit ops), q − 32 widened to
        /// int16 and multiplied by its two scales (vpermw spreads them over the halves), one vpmaddwd against
        /// the 32 activations; the sums stay exact in int32 before one conversion and FMA per activation block,
        /// in ascending order.
        private func q6KRows(
            _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: Int16Activations, _ T: Int, _ R: Int,
            _ rows: Range<Int>
        ) {
            let C = x.cols, superBlocks = C / 256, rowBytes = superBlocks &* 210
            let bias = _mm256_set1_epi8(32)
            // Quarter k takes scale 2k for its first 16 weights and 2k + 1 for the last 16.
            // Literal vectors fold into constants, as the group reduction's do.
            let scaleIndex = (
                unsafeBitCast(SIMD32<Int16>(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), to: __m512i.self),
                unsafeBitCast(SIMD32<Int16>(2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3), to: __m512i.self),
                unsafeBitCast(SIMD32<Int16>(4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5), to: __m512i.self),
                unsafeBitCast(SIMD32<Int16>(6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7), to: __m512i.self)
            )
            for r in rows {
                let row = weight + r &* rowBytes
                for t in 0..<T {
                    var acc = _mm512_setzero_ps()
                    let q = x.q + t &* C, s = x.scales + t &* x.blocks
                    for sb in 0..<superBlocks {
                        let block = row + sb &* 210
                        prefetch(block + prefetchDistance, bytes: 210)
                        let d = half(block, 208)
                        for h in 0..<2 {
                            let ql = block + h &* 64, qh = block + (128 &+ h &* 32), sc = block + (192 &+ h &* 8)
                            let low01 = ql.loadUnaligned(as: __m256i.self), low23 = (ql + 32).loadUnaligned(as: __m256i.self)
                            let high = qh.loadUnaligned(as: __m256i.self)
                            let scales = _mm512_castsi128_si512(_mm_cvtepi8_epi16(_mm_cvtsi64_si128(sc.loadUnaligned(as: Int64.self))))
                            for quarter in 0..<4 {
                                let codes = q6KQuarterCodes(low01, low23, high, quarter)
                                let index = quarter == 0 ? scaleIndex.0 : quarter == 1 ? scaleIndex.1 : quarter == 2 ? scaleIndex.2 : scaleIndex.3
                                // sc·(q − 32) fits int16 (|·| ≤ 4096), so the scale goes in before the product.
                                let w = _mm512_mullo_epi16(
                                    _mm512_cvtepi8_epi16(_mm256_sub_epi8(codes, bias)),
                                    _mm512_permutexvar_epi16(index, scales))
                                let ab = sb &* 8 &+ h &* 4 &+ quarter
                                let sum = _mm512_madd_epi16(w, UnsafeRawPointer(q + ab &* 32).loadUnaligned(as: __m512i.self))
                                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * s[ab]), acc)
                            }
                        }
                    }
                    out[t &* R &+ r] = laneSum(acc)
                }
            }
        }
    #else
        /// Q6_K rows, AVX2: each 32-weight quarter of a half block (one activation block, two int8 scales) is
        /// assembled as 32 bytes of q − 32 (256-bit ops, as the 512-bit kernel), split into its even and odd
        /// bytes by word shifts (activations in `ActivationLayout.evenOdd` order) and multiplied by two
        /// vpmaddwd; the int32 lanes ([first sub-block × 4 | second × 4]) are converted and scaled by
        /// d·sc·d_x in one FMA. The scales go in as floats, not with vpmullw on the weights: on cores whose
        /// one integer-multiply pipe also runs every vpmaddwd (AMD Zen 1 and 2), that halves its load, and
        /// the FMA runs on another pipe.
        private func q6KRows(
            _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: Int16Activations, _ T: Int, _ R: Int,
            _ rows: Range<Int>
        ) {
            let bias = _mm256_set1_epi8(32)
            q6KHalfBlocks(out, weight, x.cols, T, R, rows) { acc, t, low01, low23, high, scales, first in
                let q = x.q + t &* x.cols, s = x.scales + t &* x.blocks
                var acc = acc
                for quarter in 0..<4 {
                    let codes = q6KQuarterCodes(low01, low23, high, quarter)
                    let index = q6KScaleIndex(quarter)
                    let v = _mm256_sub_epi8(codes, bias)
                    let even = _mm256_srai_epi16(_mm256_slli_epi16(v, 8), 8), odd = _mm256_srai_epi16(v, 8)
                    let ab = first &+ quarter
                    let xv = UnsafeRawPointer(q + ab &* 32)
                    // Four products of ≤ 32·32767 per int32 lane: exact.
                    let sum = _mm256_add_epi32(
                        _mm256_madd_epi16(even, xv.loadUnaligned(as: __m256i.self)),
                        _mm256_madd_epi16(odd, (xv + 32).loadUnaligned(as: __m256i.self)))
                    let scale = _mm256_mul_ps(_mm256_permutevar8x32_ps(scales, index), _mm256_set1_ps(s[ab]))
                    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, acc)
                }
                return acc
            }
        }
    #endif
#else
    private func q6KRows(
        _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: Int16Activations, _ T: Int, _ R: Int,
        _ rows: Range<Int>
    ) {
        int16Reference(out, weight, .q6_K, x, T, R, rows)
    }

    private enum Q8_0Block {}
    private enum Q4_0Block {}
    private enum Q4_1Block {}

    /// Portable builds use the f32 path; this keeps the entry point (and its tests) working everywhere.
    private func int16Rows<B>(
        _: B.Type, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: Int16Activations,
        _ T: Int, _ R: Int, _ rows: Range<Int>
    ) {
        let type: BlockQuantization = B.self == Q8_0Block.self ? .q8_0 : B.self == Q4_0Block.self ? .q4_0 : .q4_1
        int16Reference(out, weight, type, x, T, R, rows)
    }
#endif

/// Scalar integer arithmetic of the same formula (the portable path and the oracle's core).
private func int16Reference(
    _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ type: BlockQuantization, _ x: Int16Activations,
    _ T: Int, _ R: Int, _ rows: Range<Int>
) {
    let blocks = x.blocks, rowBytes = type.rowBytes(x.cols)
    if type == .q6_K {
        // w = d·sc·(q − 32): the integer q·x products of each 16-weight sub-block, scaled, in Double.
        for r in rows {
            let row = weight + r * rowBytes
            for t in 0..<T {
                var sum = 0.0
                for b in 0..<blocks {
                    let block = row + (b / 8) * 210
                    let d = Double(half(block, 208))
                    for i in (b * 32)..<(b * 32 + 32) {
                        let w = Double(quantizedElementReference(row, type: .q6_K, index: i))
                        // sc·(q − 32) back from the decoded weight, exactly: d (11 significant bits) times an integer
                        // below 2^13 is exact in f32.
                        let scaled = d != 0 ? (w / d).rounded() : 0
                        sum += d * Double(x.scales[t * blocks + b]) * scaled * Double(x.q[t * x.cols + i])
                    }
                }
                out[t * R + r] = Float(sum)
            }
        }
        return
    }
    for r in rows {
        let row = weight + r * rowBytes
        for t in 0..<T {
            var sum = 0.0
            for b in 0..<blocks {
                let block = row + b * type.blockBytes
                let d = Double(half(block, 0))
                let m: Double =
                    switch type {
                    case .q4_0: -8 * d
                    case .q4_1: Double(half(block, 2))
                    default: 0
                    }
                var dot: Int64 = 0
                for i in 0..<32 {
                    let qw: Int
                    switch type {
                    case .q8_0: qw = Int(block.load(fromByteOffset: 2 + i, as: Int8.self))
                    default:
                        let byte = block.load(fromByteOffset: (type == .q4_1 ? 4 : 2) + i % 16, as: UInt8.self)
                        qw = Int(i < 16 ? byte & 0xF : byte >> 4)
                    }
                    dot += Int64(qw) * Int64(x.q[t * x.cols + b * 32 + i])
                }
                sum += d * Double(x.scales[t * blocks + b]) * Double(dot) + m * Double(x.sums[t * blocks + b])
            }
            out[t * R + r] = Float(sum)
        }
    }
}

// MARK: - Naive twin

/// The reference for `matMulQuantizedInt16`: the same 16-bit activations, integer block products and the
/// block formula evaluated in Double, one output at a time.
public func matMulQuantizedInt16Reference(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer, type: BlockQuantization,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int
) {
    let blocks = cols / 32
    var q = [Int16](repeating: 0, count: tokens * cols)
    var scales = [Float](repeating: 0, count: tokens * blocks)
    var sums = scales
    quantizeActivations16(input, count: tokens * cols, q: &q, scales: &scales, sums: &sums)
    q.withUnsafeBufferPointer { q in
        scales.withUnsafeBufferPointer { s in
            sums.withUnsafeBufferPointer { sx in
                let x = Int16Activations(q: q.baseAddress!, scales: s.baseAddress!, sums: sx.baseAddress!, cols: cols)
                int16Reference(out, weight, type, x, tokens, rows, 0..<rows)
            }
        }
    }
}
