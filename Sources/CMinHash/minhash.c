// See CMinHash.h. Strategy: the permutation loop (m = num_perm, 128 by default) is the inner loop, so that
// each shingle hash is broadcast once and the loop over the (a, b, sig) arrays vectorises: 4 lanes of 64-bit
// products (vpmuludq on the high and low halves of a), a shift, and vpminud on the 32-bit results.
#include "CMinHash.h"
#include <stdlib.h>
#include <string.h>

static inline void update_portable(uint32_t *restrict sig, const uint64_t *restrict a, const uint64_t *restrict b,
                                   int m, const uint64_t *restrict xs, int n) {
    for (int i = 0; i < n; i++) {
        const uint64_t x = xs[i];
        const uint64_t x32 = (uint32_t)(x ^ (x >> 32));
#pragma clang loop vectorize(enable) interleave(enable)
        for (int k = 0; k < m; k++) {
            const uint32_t v = (uint32_t)((a[k] * x32 + b[k]) >> 32);
            sig[k] = v < sig[k] ? v : sig[k];
        }
    }
}

static inline void update32_portable(uint32_t *restrict sig, const uint32_t *restrict a, const uint32_t *restrict b,
                                     int m, const uint32_t *restrict xs, int n) {
    for (int i = 0; i < n; i++) {
        const uint32_t x = xs[i];
#pragma clang loop vectorize(enable) interleave(enable)
        for (int k = 0; k < m; k++) {
            const uint32_t v = a[k] * x + b[k];
            sig[k] = v < sig[k] ? v : sig[k];
        }
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
// 32 permutations at a time stay in registers (4 x 8 lanes of a, b and the running minima) while all shingles
// stream past, so the inner loop is a broadcast and 4 x (vpmulld, vpaddd, vpminud) with no loads or stores.
__attribute__((target("avx2"))) static void update32_avx2(uint32_t *restrict sig, const uint32_t *restrict a,
                                                           const uint32_t *restrict b, int m,
                                                           const uint32_t *restrict xs, int n) {
    int k = 0;
    for (; k + 32 <= m; k += 32) {
        const __m256i a0 = _mm256_loadu_si256((const __m256i *)(a + k)), a1 = _mm256_loadu_si256((const __m256i *)(a + k + 8));
        const __m256i a2 = _mm256_loadu_si256((const __m256i *)(a + k + 16)), a3 = _mm256_loadu_si256((const __m256i *)(a + k + 24));
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + k)), b1 = _mm256_loadu_si256((const __m256i *)(b + k + 8));
        const __m256i b2 = _mm256_loadu_si256((const __m256i *)(b + k + 16)), b3 = _mm256_loadu_si256((const __m256i *)(b + k + 24));
        __m256i s0 = _mm256_loadu_si256((const __m256i *)(sig + k)), s1 = _mm256_loadu_si256((const __m256i *)(sig + k + 8));
        __m256i s2 = _mm256_loadu_si256((const __m256i *)(sig + k + 16)), s3 = _mm256_loadu_si256((const __m256i *)(sig + k + 24));
        for (int i = 0; i < n; i++) {
            const __m256i x = _mm256_set1_epi32((int)xs[i]);
            s0 = _mm256_min_epu32(s0, _mm256_add_epi32(_mm256_mullo_epi32(a0, x), b0));
            s1 = _mm256_min_epu32(s1, _mm256_add_epi32(_mm256_mullo_epi32(a1, x), b1));
            s2 = _mm256_min_epu32(s2, _mm256_add_epi32(_mm256_mullo_epi32(a2, x), b2));
            s3 = _mm256_min_epu32(s3, _mm256_add_epi32(_mm256_mullo_epi32(a3, x), b3));
        }
        _mm256_storeu_si256((__m256i *)(sig + k), s0);
        _mm256_storeu_si256((__m256i *)(sig + k + 8), s1);
        _mm256_storeu_si256((__m256i *)(sig + k + 16), s2);
        _mm256_storeu_si256((__m256i *)(sig + k + 24), s3);
    }
    for (; k + 8 <= m; k += 8) {
        const __m256i a0 = _mm256_loadu_si256((const __m256i *)(a + k)), b0 = _mm256_loadu_si256((const __m256i *)(b + k));
        __m256i s0 = _mm256_loadu_si256((const __m256i *)(sig + k));
        for (int i = 0; i < n; i++) {
            s0 = _mm256_min_epu32(s0, _mm256_add_epi32(_mm256_mullo_epi32(a0, _mm256_set1_epi32((int)xs[i])), b0));
        }
        _mm256_storeu_si256((__m256i *)(sig + k), s0);
    }
    if (k < m) update32_portable(sig + k, a + k, b + k, m - k, xs, n);
}

void intern_minhash_update32(uint32_t *sig, const uint32_t *a, const uint32_t *b, int m, const uint32_t *xs, int n) {
    if (intern_minhash_uses_avx2()) {
        update32_avx2(sig, a, b, m, xs, n);
    } else {
        update32_portable(sig, a, b, m, xs, n);
    }
}

__attribute__((target("avx2"))) static void update_avx2(uint32_t *restrict sig, const uint64_t *restrict a,
                                                         const uint64_t *restrict b, int m,
                                                         const uint64_t *restrict xs, int n) {
    update_portable(sig, a, b, m, xs, n);
}

static int avx2_state = -1;

int intern_minhash_uses_avx2(void) {
    if (avx2_state < 0) {
        __builtin_cpu_init();
        avx2_state = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return avx2_state;
}

void intern_minhash_update(uint32_t *sig, const uint64_t *a, const uint64_t *b, int m, const uint64_t *xs, int n) {
    if (intern_minhash_uses_avx2()) {
        update_avx2(sig, a, b, m, xs, n);
    } else {
        update_portable(sig, a, b, m, xs, n);
    }
}
#else
int intern_minhash_uses_avx2(void) { return 0; }

void intern_minhash_update32(uint32_t *sig, const uint32_t *a, const uint32_t *b, int m, const uint32_t *xs, int n) {
    update32_portable(sig, a, b, m, xs, n);
}

void intern_minhash_update(uint32_t *sig, const uint64_t *a, const uint64_t *b, int m, const uint64_t *xs, int n) {
    update_portable(sig, a, b, m, xs, n);
}
#endif

// MARK: SHA-1 (FIPS 180-4), only as datasketch's default shingle hash; not for security.

static inline uint32_t rol(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

static void sha1_block(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) {
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) | ((uint32_t)p[4 * i + 2] << 8) | p[4 * i + 3];
    }
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
// One block with the SHA extensions (sha1rnds4 does 4 rounds): the message schedule
// W_k = sha1msg2(sha1msg1(W_{k-4}, W_{k-3}) ^ W_{k-2}, W_{k-1}) over 4-word groups, as in Intel's reference.
__attribute__((target("sha,sse4.1"))) static void sha1_block_shani(uint32_t h[5], const uint8_t *p) {
    const __m128i mask = _mm_set_epi64x(0x0001020304050607ULL, 0x08090a0b0c0d0e0fULL);
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1B);
    __m128i e0 = _mm_set_epi32((int)h[4], 0, 0, 0);
    const __m128i abcd_save = abcd, e_save = e0;
    __m128i w[4];
    for (int k = 0; k < 4; k++) w[k] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * k)), mask);
    __m128i eprev = abcd;
    __m128i ecur = _mm_add_epi32(e0, w[0]);
    abcd = _mm_sha1rnds4_epu32(abcd, ecur, 0);
    for (int k = 1; k < 20; k++) {
        __m128i wk;
        if (k < 4) {
            wk = w[k];
        } else {
            wk = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(w[k & 3], w[(k + 1) & 3]), w[(k + 2) & 3]), w[(k + 3) & 3]);
            w[k & 3] = wk;
        }
        ecur = _mm_sha1nexte_epu32(eprev, wk);
        eprev = abcd;
        switch (k / 5) {
        case 0: abcd = _mm_sha1rnds4_epu32(abcd, ecur, 0); break;
        case 1: abcd = _mm_sha1rnds4_epu32(abcd, ecur, 1); break;
        case 2: abcd = _mm_sha1rnds4_epu32(abcd, ecur, 2); break;
        default: abcd = _mm_sha1rnds4_epu32(abcd, ecur, 3); break;
        }
    }
    e0 = _mm_sha1nexte_epu32(eprev, e_save);
    abcd = _mm_add_epi32(abcd, abcd_save);
    _mm_storeu_si128((__m128i *)h, _mm_shuffle_epi32(abcd, 0x1B));
    h[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}

// Two independent blocks interleaved: sha1rnds4 has a latency of several cycles and each block is a chain of
// 20 of them, so a second chain fills the gaps (shingles are short: almost all fit one block).
__attribute__((target("sha,sse4.1"))) static void sha1_block_shani_x2(uint32_t h[5], const uint8_t *p, uint32_t g[5],
                                                                      const uint8_t *q) {
    const __m128i mask = _mm_set_epi64x(0x0001020304050607ULL, 0x08090a0b0c0d0e0fULL);
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1B);
    __m128i abcd2 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)g), 0x1B);
    const __m128i e_save = _mm_set_epi32((int)h[4], 0, 0, 0), e_save2 = _mm_set_epi32((int)g[4], 0, 0, 0);
    const __m128i abcd_save = abcd, abcd_save2 = abcd2;
    __m128i w[4], v[4];
    for (int k = 0; k < 4; k++) {
        w[k] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * k)), mask);
        v[k] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(q + 16 * k)), mask);
    }
    __m128i eprev = abcd, eprev2 = abcd2;
    __m128i ecur = _mm_add_epi32(e_save, w[0]), ecur2 = _mm_add_epi32(e_save2, v[0]);
    abcd = _mm_sha1rnds4_epu32(abcd, ecur, 0);
    abcd2 = _mm_sha1rnds4_epu32(abcd2, ecur2, 0);
#pragma clang loop unroll(full)
    for (int k = 1; k < 20; k++) {
        __m128i wk, vk;
        if (k < 4) {
            wk = w[k];
            vk = v[k];
        } else {
            wk = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(w[k & 3], w[(k + 1) & 3]), w[(k + 2) & 3]), w[(k + 3) & 3]);
            vk = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(v[k & 3], v[(k + 1) & 3]), v[(k + 2) & 3]), v[(k + 3) & 3]);
            w[k & 3] = wk;
            v[k & 3] = vk;
        }
        ecur = _mm_sha1nexte_epu32(eprev, wk);
        ecur2 = _mm_sha1nexte_epu32(eprev2, vk);
        eprev = abcd;
        eprev2 = abcd2;
        switch (k / 5) {
        case 0: abcd = _mm_sha1rnds4_epu32(abcd, ecur, 0); abcd2 = _mm_sha1rnds4_epu32(abcd2, ecur2, 0); break;
        case 1: abcd = _mm_sha1rnds4_epu32(abcd, ecur, 1); abcd2 = _mm_sha1rnds4_epu32(abcd2, ecur2, 1); break;
        case 2: abcd = _mm_sha1rnds4_epu32(abcd, ecur, 2); abcd2 = _mm_sha1rnds4_epu32(abcd2, ecur2, 2); break;
        default: abcd = _mm_sha1rnds4_epu32(abcd, ecur, 3); abcd2 = _mm_sha1rnds4_epu32(abcd2, ecur2, 3); break;
        }
    }
    const __m128i e0 = _mm_sha1nexte_epu32(eprev, e_save), e2 = _mm_sha1nexte_epu32(eprev2, e_save2);
    abcd = _mm_add_epi32(abcd, abcd_save);
    abcd2 = _mm_add_epi32(abcd2, abcd_save2);
    _mm_storeu_si128((__m128i *)h, _mm_shuffle_epi32(abcd, 0x1B));
    _mm_storeu_si128((__m128i *)g, _mm_shuffle_epi32(abcd2, 0x1B));
    h[4] = (uint32_t)_mm_extract_epi32(e0, 3);
    g[4] = (uint32_t)_mm_extract_epi32(e2, 3);
}

static int shani_state = -1;
static inline int uses_shani(void) {
    if (shani_state < 0) {
        __builtin_cpu_init();
        shani_state = (__builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1")) ? 1 : 0;
    }
    return shani_state;
}
#define SHA1_BLOCK(h, p) (uses_shani() ? sha1_block_shani((h), (p)) : sha1_block((h), (p)))
#else
#define SHA1_BLOCK(h, p) sha1_block((h), (p))
#endif

uint32_t intern_sha1_hash32(const uint8_t *data, long len) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    long i = 0;
    for (; i + 64 <= len; i += 64) SHA1_BLOCK(h, data + i);
    uint8_t tail[128];
    long rest = len - i;
    memcpy(tail, data + i, (size_t)rest);
    tail[rest] = 0x80;
    long total = rest + 1 + 8 <= 64 ? 64 : 128;
    memset(tail + rest + 1, 0, (size_t)(total - rest - 1));
    uint64_t bits = (uint64_t)len * 8;
    for (int k = 0; k < 8; k++) tail[total - 1 - k] = (uint8_t)(bits >> (8 * k));
    SHA1_BLOCK(h, tail);
    if (total == 128) SHA1_BLOCK(h, tail + 64);
    // The digest's first 4 bytes are h[0] big-endian; read them as a little-endian integer.
    uint32_t d = h[0];
    return ((d >> 24) & 0xFF) | (((d >> 16) & 0xFF) << 8) | (((d >> 8) & 0xFF) << 16) | ((d & 0xFF) << 24);
}

// MARK: datasketch shingle hashes

static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bU;
    h ^= h >> 13;
    h *= 0xc2b2ae35U;
    return h ^ (h >> 16);
}

static inline uint32_t digest_word(uint32_t d) {
    return ((d >> 24) & 0xFF) | (((d >> 16) & 0xFF) << 8) | (((d >> 8) & 0xFF) << 16) | ((d & 0xFF) << 24);
}

/// One padded SHA-1 block holding a message of len <= 55 bytes already copied to blk[0..<len].
static inline void pad_single_block(uint8_t blk[64], long len) {
    blk[len] = 0x80;
    memset(blk + len + 1, 0, (size_t)(63 - len));
    const uint64_t bits = (uint64_t)len * 8;
    for (int k = 0; k < 8; k++) blk[63 - k] = (uint8_t)(bits >> (8 * k));
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
/// The padded single block of src[0..<len] (len <= 55; src readable for 64 bytes), built in four 16-byte
/// vectors: bytes past len masked off, 0x80 at len, the bit length in bytes 62-63. Four whole stores, so the
/// SHA-1 loads that follow are forwarded from them.
static inline void make_single_block(uint8_t blk[64], const uint8_t *src, long len) {
    const __m128i l = _mm_set1_epi8((char)len), pad = _mm_set1_epi8((char)0x80);
    const uint16_t bits = (uint16_t)(len * 8);
    const __m128i tail = _mm_insert_epi16(_mm_setzero_si128(), (int)(uint16_t)((bits >> 8) | (bits << 8)), 7);
    __m128i idx = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i sixteen = _mm_set1_epi8(16);
    for (int k = 0; k < 4; k++) {
        const __m128i d = _mm_loadu_si128((const __m128i *)(src + 16 * k));
        __m128i v = _mm_or_si128(_mm_and_si128(d, _mm_cmpgt_epi8(l, idx)), _mm_and_si128(_mm_cmpeq_epi8(l, idx), pad));
        if (k == 3) v = _mm_or_si128(v, tail);
        _mm_storeu_si128((__m128i *)(blk + 16 * k), v);
        idx = _mm_add_epi8(idx, sixteen);
    }
}
#else
static inline void make_single_block(uint8_t blk[64], const uint8_t *src, long len) {
    memcpy(blk, src, (size_t)len);
    pad_single_block(blk, len);
}
#endif

void intern_datasketch_shingle_hashes(const uint8_t *joined, const int32_t *starts, int tokens, int g, uint32_t *out) {
    const int count = tokens - g + 1;
    uint8_t blocks[2][64];
    int pending = -1;  // a shingle whose single block waits in blocks[0] for a partner
    for (int s = 0; s < count; s++) {
        const uint8_t *shingle = joined + starts[s];
        const long len = (long)(starts[s + g] - 1 - starts[s]);  // without the space after its last token
        if (len > 55) {
            out[s] = fmix32(intern_sha1_hash32(shingle, len));
            continue;
        }
        make_single_block(blocks[pending < 0 ? 0 : 1], shingle, len);
        if (pending < 0) {
            pending = s;
            continue;
        }
        uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
        uint32_t h2[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
        if (uses_shani()) {
            sha1_block_shani_x2(h, blocks[0], h2, blocks[1]);
        } else {
            sha1_block(h, blocks[0]);
            sha1_block(h2, blocks[1]);
        }
#else
        sha1_block(h, blocks[0]);
        sha1_block(h2, blocks[1]);
#endif
        out[pending] = fmix32(digest_word(h[0]));
        out[s] = fmix32(digest_word(h2[0]));
        pending = -1;
    }
    if (pending >= 0) {
        uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
        SHA1_BLOCK(h, blocks[0]);
        out[pending] = fmix32(digest_word(h[0]));
    }
}
