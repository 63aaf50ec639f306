// Prefill (many tokens at once) against bf16 weights with AVX-512 BF16 dot products, as llama.cpp's bf16
// path computes it: the activations are rounded to bf16 once per call, then `vdpbf16ps` multiplies pairs of
// bf16 weights by pairs of bf16 activations and adds both products into an f32 lane, twice the products per
// instruction of f32 FMAs. It is `PrefillGEMM.swift`'s GEMM with 4-byte units that hold a pair of bf16
// columns: the weights packed per block as pairs (no f32 staging, so a 512-column block per 128 KiB panel),
// the token pairs broadcast as 32-bit values, 12 tokens × 32 rows per micro-kernel. On AMD Zen 4 an f32 FMA
// chain cannot reach llama.cpp's bf16 prefill at all: 2 cores × 116 GFLOP/s measured peak is 76 tokens/s of
// internlm2-1_8b at 100%, against llama.cpp's 85 (BENCHMARKS.md, CPU inference).
// Each output is one chain of `vdpbf16ps` over the column pairs in ascending order, so a token's result does
// not depend on T, the tiling or the threads. Accuracy: the activations' bf16 rounding (relative 2^-9) is the
// difference from `matMulPrefill`; the weights are bf16 already. `matMulBF16PrefillReference` rounds the same
// way and accumulates in Double. Decode (one token per sequence) rounds the same way: `matMulBF16Decode` below for
// bf16 matrices read in place, `PackedBFloat16Matrix.multiplyBFloat16` for the packed copies.
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
        gemm(out, BFloat16GEMM(rows: BFloat16Rows(base: weight, cols: cols)), input, tokens, rows, cols, pool)
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

/// `x` as the bf16 bit pattern the kernels multiply: `roundedToBFloat16`'s top half; a NaN keeps a quiet NaN's
/// top half (its payload may lie in the low bits only).
@inline(__always)
func bfloat16Bits(_ x: Float) -> UInt16 {
    UInt16(truncatingIfNeeded: x.isNaN ? x.bitPattern >> 16 | 0x40 : roundedToBFloat16(x).bitPattern >> 16)
}

/// out (T, R) = bf16(x) (T, C) · Wᵀ for decode (one token per sequence), W (R, C) bf16 read in place; threaded over
/// rows when `pool` is given. llama.cpp's `ggml_vec_dot_bf16`: per output two `vdpbf16ps` chains over 64 columns a
/// step, their lane sum, then the columns past the last whole 64 in ascending order (f32 FMAs of the same bf16
/// values), so a token's result does not depend on T. For bf16 matrices without a packed copy; the naive twin is
/// `matMulBF16PrefillReference`.
public func matMulBF16Decode(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols) bf16
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    #if INTERNKIT_AVX512BF16
        guard tokens > 0 else { return }
        withUnsafeTemporaryAllocation(of: UInt16.self, capacity: tokens * cols) { buffer in
            let xb = buffer.baseAddress!
            for i in 0..<(tokens * cols) { xb[i] = bfloat16Bits(input[i]) }
            let x = UnsafeRawPointer(xb)
            let body = { (range: Range<Int>, _: Int) in
                let C = cols, whole = cols / 64 * 64
                for r in range {
                    let w = weight + r &* C &* 2
                    for t in 0..<tokens {
                        let xt = x + t &* C &* 2
                        var a0 = FloatVector(), a1 = a0
                        var c = 0
                        while c < whole {
                            let b = c &* 2
                            a0 = intern_dpbf16(a0, w.loadUnaligned(fromByteOffset: b, as: __m512i.self), xt.loadUnaligned(fromByteOffset: b, as: __m512i.self))
                            a1 = intern_dpbf16(
                                a1, w.loadUnaligned(fromByteOffset: b &+ 64, as: __m512i.self), xt.loadUnaligned(fromByteOffset: b &+ 64, as: __m512i.self))
                            c &+= 64
                        }
                        var s = laneSum(a0 + a1)
                        while c < C {
                            let wc = Float(bitPattern: UInt32(w.loadUnaligned(fromByteOffset: c &* 2, as: UInt16.self)) << 16)
                            s = s.addingProduct(wc, Float(bitPattern: UInt32(xt.load(fromByteOffset: c &* 2, as: UInt16.self)) << 16))
                            c &+= 1
                        }
                        out[t &* rows &+ r] = s
                    }
                }
            }
            if let pool { pool.parallelFor(rows, granularity: 4, body) } else { body(0..<rows, 0) }
        }
    #else
        matMulBF16PrefillReference(out, weight: weight, input: input, tokens: tokens, rows: rows, cols: cols)
    #endif
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
    /// Weight rows as bf16 bit patterns for `BFloat16GEMM`.
    protocol GEMMBFloat16Rows {
        /// Row `row`'s columns `from ..< from + count` as bf16, in the column order of the activations.
        func convertBFloat16(row: Int, from: Int, count: Int, into out: UnsafeMutablePointer<UInt16>)
    }

    /// A bf16 matrix read in place.
    struct BFloat16Rows: GEMMBFloat16Rows {
        let base: UnsafeRawPointer
        let cols: Int

        @inline(__always)
        func convertBFloat16(row: Int, from: Int, count: Int, into out: UnsafeMutablePointer<UInt16>) {
            UnsafeMutableRawPointer(out).copyMemory(from: base + (row &* cols &+ from) &* 2, byteCount: count &* 2)
        }
    }

    /// bf16 activations and weights, `vdpbf16ps` micro-kernels (see the header).
    struct BFloat16GEMM<Rows: GEMMBFloat16Rows>: GEMMKernel {
        let rows: Rows

        static var columnsPerUnit: Int { 2 }

        static func packTokenBlock(_ dst: UnsafeMutableRawPointer, _ x: UnsafePointer<Float>, _ m: Int, _ C: Int) {
            let units = (C &+ 1) / 2
            let d = dst.assumingMemoryBound(to: UInt32.self)
            if m < gemmTokens { d.update(repeating: 0, count: gemmTokens &* units) }
            @inline(__always) func bits(_ v: Float) -> UInt32 { UInt32(bfloat16Bits(v)) }
            for t in 0..<m {
                let row = x + t &* C
                var p = d + t
                for u in 0..<units {
                    let c = 2 &* u
                    p.pointee = bits(row[c]) | (c &+ 1 < C ? bits(row[c &+ 1]) << 16 : 0)
                    p += gemmTokens
                }
            }
        }

        @inline(__always)
        func packRow(_ row: Int, from: Int, count: Int, into out: UnsafeMutableRawPointer) {
            let o = out.assumingMemoryBound(to: UInt16.self)
            rows.convertBFloat16(row: row, from: from, count: count, into: o)
            if count & 1 == 1 { o[count] = 0 }
        }

        typealias Ops = BFloat16UnitOps
    }

    /// Pairs of bf16: `vdpbf16ps` adds both products of a pair into the lane.
    enum BFloat16UnitOps: GEMMUnitOps {
        @inline(__always)
        static func weights(_ p: UnsafeRawPointer, byteOffset: Int) -> __m512i {
            p.loadUnaligned(fromByteOffset: byteOffset, as: __m512i.self)
        }

        @inline(__always)
        static func broadcast(_ x: UnsafeRawPointer, _ t: Int) -> __m512i {
            _mm512_set1_epi32(x.load(fromByteOffset: t &* 4, as: Int32.self))
        }

        @inline(__always)
        static func madd(_ acc: FloatVector, _ w: __m512i, _ a: __m512i) -> FloatVector {
            intern_dpbf16(acc, w, a)
        }
    }
#endif
