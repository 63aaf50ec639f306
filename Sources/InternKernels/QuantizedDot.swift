// Products of Q8_0/Q4_0 weights with activations quantized to 8 bits, as llama.cpp's `ggml_vec_dot_q4_0_q8_0`
// and `ggml_vec_dot_q8_0_q8_0` compute them: out[t, r] = Σ_blocks d_w·d_x · Σ_i q_w[i]·q_x[i].
// Each token is first quantized in blocks of 32 (`quantizeActivations`: d = max|x|/127, q = round(x/d),
// ggml `quantize_row_q8_0`), then every block product is an integer dot product: on x86-64 built for
// Haswell (INTERNKIT_FMA, see Package.swift) 32 multiply-adds are `vpmaddubsw` + `vpmaddwd` (the sign of the
// weights moved onto the activations, as ggml's `mul_sum_i8_pairs`), converted once per block and scaled
// into an f32 accumulator with one FMA: about a third of the instructions of de-quantizing to f32.
// Accuracy trade-off: the activations carry a rounding error of up to d/2 = max|x|/254 per block, so the
// result is not the exact product of the de-quantized weights (`matMulQuantized` is); llama.cpp accepts
// the same error. `intern perplexity --reference` measures it on a model (BENCHMARKS.md, CPU inference).
// Threaded over rows; each output has one accumulator over its blocks in ascending order, then its lane
// sum, whatever the token count: a token's result does not depend on how many tokens share the call.
// Elsewhere (arm64, portable x86-64) the same arithmetic runs in scalar integer code.
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
public func supportsInt8Activations(_ type: BlockQuantization) -> Bool { type == .q8_0 || type == .q4_0 }

/// Quantizes `tokens` rows of `cols` activations (cols a multiple of 32) into int8 blocks: `q` gets
/// tokens·cols values, `scales` tokens·cols/32 (q·scale ≈ x).
public func quantizeActivations(
    _ x: UnsafePointer<Float>, count: Int, q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>
) {
    precondition(count % 32 == 0, "activations must come in blocks of 32")
    for b in 0..<(count / 32) {
        let xb = x + b * 32
        var amax: Float = 0
        for i in 0..<32 { amax = max(amax, abs(xb[i])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        scales[b] = d
        for i in 0..<32 { q[b * 32 + i] = Int8((xb[i] * id).rounded()) }
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
    precondition(supportsInt8Activations(type) && cols % 32 == 0, "int8 activations need q8_0/q4_0 and cols % 32 == 0")
    let blocks = cols / 32
    // One allocation per call for the quantized activations (on the stack when small, as in decode).
    withUnsafeTemporaryAllocation(byteCount: tokens * cols + tokens * blocks * 4, alignment: 32) { raw in
        let q = raw.baseAddress!.bindMemory(to: Int8.self, capacity: tokens * cols)
        let scales = (raw.baseAddress! + tokens * cols).bindMemory(to: Float.self, capacity: tokens * blocks)
        quantizeActivations(input, count: tokens * cols, q: q, scales: scales)
        let body = { (range: Range<Int>, _: Int) in
            int8Rows(type, out, weight, UnsafePointer(q), UnsafePointer(scales), tokens, rows, cols, range)
        }
        if let pool {
            pool.parallelFor(rows, granularity: 4, body)
        } else {
            body(0..<rows, 0)
        }
    }
}

private func int8Rows(
    _ type: BlockQuantization, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer,
    _ q: UnsafePointer<Int8>, _ scales: UnsafePointer<Float>, _ T: Int, _ R: Int, _ C: Int, _ rows: Range<Int>
) {
    let blocks = C / 32, blockBytes = type.blockBytes, rowBytes = blocks * blockBytes
    for r in rows {
        let row = weight + r * rowBytes
        for t in 0..<T {
            let xq = q + t * C, xs = scales + t * blocks
            out[t * R + r] =
                type == .q4_0 ? dotQ4_0(row, xq, xs, blocks) : dotQ8_0(row, xq, xs, blocks)
        }
    }
}

#if INTERNKIT_FMA
    @inline(__always)
    private func load256(_ p: UnsafeRawPointer) -> __m256i { p.loadUnaligned(as: __m256i.self) }

    /// Σ_i |w_i|·(sign(w_i)·x_i) over 32 bytes, as eight int32 lanes converted to f32.
    @inline(__always)
    private func blockDot(_ w: __m256i, _ x: __m256i) -> __m256 {
        let products = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))
        return _mm256_cvtepi32_ps(_mm256_madd_epi16(products, _mm256_set1_epi16(1)))
    }

    @inline(__always)
    private func dotQ8_0(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>, _ blocks: Int) -> Float {
        var acc = _mm256_setzero_ps()
        for b in 0..<blocks {
            let block = row + b &* 34
            let d = half(block, 0) * xs[b]
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), blockDot(load256(block + 2), load256(xq + b &* 32)), acc)
        }
        return SIMD8<Float>(acc).sum()
    }

    @inline(__always)
    private func dotQ4_0(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>, _ blocks: Int) -> Float {
        var acc = _mm256_setzero_ps()
        let low = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8)
        for b in 0..<blocks {
            let block = row + b &* 18
            let d = half(block, 0) * xs[b]
            let bytes = (block + 2).loadUnaligned(as: __m128i.self)
            let nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(bytes, 4), bytes), low)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), blockDot(_mm256_sub_epi8(nibbles, eight), load256(xq + b &* 32)), acc)
        }
        return SIMD8<Float>(acc).sum()
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

    private func dotQ4_0(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>, _ blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let block = row + b * 18
            var sum: Int32 = 0
            for i in 0..<16 {
                let byte = block.load(fromByteOffset: 2 + i, as: UInt8.self)
                sum &+= (Int32(byte & 0xF) - 8) &* Int32(xq[b * 32 + i])
                sum &+= (Int32(byte >> 4) - 8) &* Int32(xq[b * 32 + 16 + i])
            }
            acc += half(block, 0) * xs[b] * Float(sum)
        }
        return acc
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
