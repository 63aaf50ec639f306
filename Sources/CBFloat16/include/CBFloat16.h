// AVX-512 BF16 dot products for the bf16 prefill kernel. C because Swift cannot import clang's `__m512bh`
// (a vector of `__bf16`), so `_mm512_dpbf16_ps` and `_mm512_cvtne2ps_pbh` are out of its reach; these
// wrappers take and return the bits as `__m512i` and inline into the Swift kernel (one instruction each).
// Only compiled where the importer is given -mavx512bf16 (Package.swift, hosts listing avx512_bf16).
#ifndef CBFLOAT16_H
#define CBFLOAT16_H
#if defined(__AVX512BF16__)
#include <immintrin.h>

/// acc[i] + a[2i]·b[2i] + a[2i+1]·b[2i+1] for the 16 f32 lanes, a and b 32 bf16 each (`vdpbf16ps`).
static inline __attribute__((always_inline)) __m512 intern_dpbf16(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

/// 32 bf16, rounded to nearest even: `low`'s 16 f32 in the first half, `high`'s in the second
/// (`vcvtne2ps2bf16`).
static inline __attribute__((always_inline)) __m512i intern_bf16_pair(__m512 low, __m512 high) {
    return (__m512i)_mm512_cvtne2ps_pbh(high, low);
}
#endif
#endif
