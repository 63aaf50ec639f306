// AVX-512 BF16 dot products for the bf16 prefill kernel. C because Swift cannot import clang's `__m512bh`
// (a vector of `__bf16`), so `_mm512_dpbf16_ps` is out of its reach; this wrapper takes the bits as
// `__m512i` and inlines into the Swift kernel (one instruction).
// Only compiled where the importer is given -mavx512bf16 (Package.swift, hosts listing avx512_bf16).
#ifndef CBFLOAT16_H
#define CBFLOAT16_H
#if defined(__AVX512BF16__)
#include <immintrin.h>

/// acc[i] + a[2i]·b[2i] + a[2i+1]·b[2i+1] for the 16 f32 lanes, a and b 32 bf16 each (`vdpbf16ps`).
static inline __attribute__((always_inline)) __m512 intern_dpbf16(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

#endif
#endif
