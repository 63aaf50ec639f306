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
// way and accumulates in Double. Used for bf16 weights in prefill only; decode keeps exact f32 activations.
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
            @inline(__always) func bits(_ v: Float) -> UInt32 { roundedToBFloat16(v).bitPattern >> 16 }
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

        /// 12 tokens × 32 rows, as `kernel12` of `PrefillGEMM.swift` with `vdpbf16ps` for the FMAs.
        @inline(__always)
        static func kernelFull(
            _ o: UnsafeMutablePointer<Float>, _ ldo: Int, _ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ units: Int, _ accumulate: Bool
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
                let v = pk.loadUnaligned(as: __m512i.self), u = pk.loadUnaligned(fromByteOffset: 64, as: __m512i.self)
                var s = pairs(xk, 0)
                a0 = intern_dpbf16(a0, v, s)
                b0 = intern_dpbf16(b0, u, s)
                s = pairs(xk, 1)
                a1 = intern_dpbf16(a1, v, s)
                b1 = intern_dpbf16(b1, u, s)
                s = pairs(xk, 2)
                a2 = intern_dpbf16(a2, v, s)
                b2 = intern_dpbf16(b2, u, s)
                s = pairs(xk, 3)
                a3 = intern_dpbf16(a3, v, s)
                b3 = intern_dpbf16(b3, u, s)
                s = pairs(xk, 4)
                a4 = intern_dpbf16(a4, v, s)
                b4 = intern_dpbf16(b4, u, s)
                s = pairs(xk, 5)
                a5 = intern_dpbf16(a5, v, s)
                b5 = intern_dpbf16(b5, u, s)
                s = pairs(xk, 6)
                a6 = intern_dpbf16(a6, v, s)
                b6 = intern_dpbf16(b6, u, s)
                s = pairs(xk, 7)
                a7 = intern_dpbf16(a7, v, s)
                b7 = intern_dpbf16(b7, u, s)
                s = pairs(xk, 8)
                a8 = intern_dpbf16(a8, v, s)
                b8 = intern_dpbf16(b8, u, s)
                s = pairs(xk, 9)
                a9 = intern_dpbf16(a9, v, s)
                b9 = intern_dpbf16(b9, u, s)
                s = pairs(xk, 10)
                a10 = intern_dpbf16(a10, v, s)
                b10 = intern_dpbf16(b10, u, s)
                s = pairs(xk, 11)
                a11 = intern_dpbf16(a11, v, s)
                b11 = intern_dpbf16(b11, u, s)
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

        /// 4 tokens × 32 rows.
        @inline(__always)
        static func kernel4(
            _ o: UnsafeMutablePointer<Float>, _ ldo: Int, _ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ units: Int, _ accumulate: Bool
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
                let v = pk.loadUnaligned(as: __m512i.self), u = pk.loadUnaligned(fromByteOffset: 64, as: __m512i.self)
                var s = pairs(xk, 0)
                a0 = intern_dpbf16(a0, v, s)
                b0 = intern_dpbf16(b0, u, s)
                s = pairs(xk, 1)
                a1 = intern_dpbf16(a1, v, s)
                b1 = intern_dpbf16(b1, u, s)
                s = pairs(xk, 2)
                a2 = intern_dpbf16(a2, v, s)
                b2 = intern_dpbf16(b2, u, s)
                s = pairs(xk, 3)
                a3 = intern_dpbf16(a3, v, s)
                b3 = intern_dpbf16(b3, u, s)
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

        /// 1 token × 32 rows.
        @inline(__always)
        static func kernel1(_ o: UnsafeMutablePointer<Float>, _ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ units: Int, _ accumulate: Bool) {
            let w = FloatVector.scalarCount
            var a = FloatVector(), b = a
            if accumulate { (a, b) = (load(o, 0), load(o, w)) }
            var pk = p, xk = x
            for _ in 0..<units {
                let s = pairs(xk, 0)
                a = intern_dpbf16(a, pk.loadUnaligned(as: __m512i.self), s)
                b = intern_dpbf16(b, pk.loadUnaligned(fromByteOffset: 64, as: __m512i.self), s)
                pk += gemmRows &* 4
                xk += gemmTokens &* 4
            }
            store(o, 0, a)
            store(o, w, b)
        }

        /// Token t's pair of bf16 activations in all 16 lanes.
        @inline(__always)
        private static func pairs(_ x: UnsafeRawPointer, _ t: Int) -> __m512i {
            _mm512_set1_epi32(x.load(fromByteOffset: t &* 4, as: Int32.self))
        }
    }
#endif
