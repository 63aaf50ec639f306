// How InternKit's AVX2 decode multiplies Q8_0 weights (Sources/InternKernels/QuantizedInt16.swift): the
// prototype of candidate kernels for one row · one token, streaming a 200 MB Q8_0 matrix once per pass on N
// threads (rows split evenly), medians of REPS passes, in billions of weights per second.
//   cvt16     int16 activations; each block's two 16-byte halves widened by vpmovsxbw, two vpmaddwd, groups
//             of eight block sums reduced by a vphaddd tree and vpermd (InternKit up to commit 2d64fd7)
//   split16   int16 activations in even/odd order per block; one 32-byte load, the even and odd bytes
//             sign-extended in place by word shifts (no vpmovsxbw), two vpmaddwd, the same group reduction
//   split16/4 split16 with four blocks per register ([b0 b1 b2 b3] per 128-bit half, two vphaddd levels),
//             scaled per four blocks
//   split16b  split16 with one cvt and FMA per block (its scale broadcast), as llama.cpp scales
//   pair16    int16 activations; blocks k and k + 4 of a group of eight share two registers (16 bytes of
//             each), split by word shifts, four vpmaddwd, three vphaddd leave the eight sums in block order
//             (InternKit since 2026-12-04, as its Q4_0/Q4_1 kernel pairs nibble blocks)
//   int8      llama.cpp's ggml_vec_dot_q8_0_q8_0 on AVX2: int8 activations, vpsignb ×2, vpmaddubsw,
//             vpmaddwd by ones, one cvt and FMA per block
//   int8/4    int8 with split16/4's reduction
//   stream    no arithmetic: one 32-byte load per 64 bytes (the rate the bytes alone stream at)
// HUGE=1 / HUGE=0 in the environment asks for / forbids transparent huge pages for the matrix.
// Build and run (AVX2 + FMA + F16C):
//   clang -O2 -march=native -pthread Benchmarks/q8_0-avx2/q8_0-avx2-bench.c -o /tmp/q8bench -lm
//   /tmp/q8bench THREADS REPS COLS        e.g. 2 9 1024
// Each kernel prefetches every cache line PREFETCH bytes ahead of the blocks it reads (as InternKit's).
// Every kernel's result is checked against a scalar double-precision product of the de-quantized operands.
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { BLOCK_BYTES = 34, PREFETCH = 4096 };  // InternKit's prefetch distance (Prefetch.swift)
static size_t R;
static int C;
static uint8_t *W;         // R rows of C/32 blocks: f16 scale, 32 int8
static int16_t *X16, *X16S; // int16 activations: natural order, even/odd order per block
static int8_t *X8;          // int8 activations (llama.cpp's)
static float *D16, *D8;     // activation scales per block
static float *OUT;
static double *REF16, *REF8;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
static inline float half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
// The f16 scales of eight consecutive blocks.
static inline __m256 scales8(const uint8_t *b) {
    __m128i h = _mm_setzero_si128();
    h = _mm_insert_epi16(h, *(const uint16_t *)(b + 0 * BLOCK_BYTES), 0);
    h = _mm_insert_epi16(h, *(const uint16_t *)(b + 1 * BLOCK_BYTES), 1);
    h = _mm_insert_epi16(h, *(const uint16_t *)(b + 2 * BLOCK_BYTES), 2);
    h = _mm_insert_epi16(h, *(const uint16_t *)(b + 3 * BLOCK_BYTES), 3);
    h = _mm_insert_epi16(h, *(const uint16_t *)(b + 4 * BLOCK_BYTES), 4);
    h = _mm_insert_epi16(h, *(const uint16_t *)(b + 5 * BLOCK_BYTES), 5);
    h = _mm_insert_epi16(h, *(const uint16_t *)(b + 6 * BLOCK_BYTES), 6);
    h = _mm_insert_epi16(h, *(const uint16_t *)(b + 7 * BLOCK_BYTES), 7);
    return _mm256_cvtph_ps(h);
}
// Eight block sums (8 int32 lanes each) reduced to one vector, lane i = block i.
static inline __m256i reduce8(__m256i p0, __m256i p1, __m256i p2, __m256i p3, __m256i p4, __m256i p5, __m256i p6, __m256i p7) {
    const __m256i swap = _mm256_setr_epi32(4, 5, 6, 7, 0, 1, 2, 3);
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(p4, p5), _mm256_hadd_epi32(p6, p7));
    a = _mm256_add_epi32(a, _mm256_permutevar8x32_epi32(a, swap));
    b = _mm256_add_epi32(b, _mm256_permutevar8x32_epi32(b, swap));
    return _mm256_blend_epi32(a, b, 0xF0);
}

static inline __m256i cvtBlock(const uint8_t *b, const int16_t *x) {
    __m256i lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const void *)(b + 2)));
    __m256i hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const void *)(b + 18)));
    return _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256((const void *)x)),
                            _mm256_madd_epi16(hi, _mm256_loadu_si256((const void *)(x + 16))));
}
static inline __m256i splitBlock(const uint8_t *b, const int16_t *x) {
    __m256i w = _mm256_loadu_si256((const void *)(b + 2));
    __m256i even = _mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8), odd = _mm256_srai_epi16(w, 8);
    return _mm256_add_epi32(_mm256_madd_epi16(even, _mm256_loadu_si256((const void *)x)),
                            _mm256_madd_epi16(odd, _mm256_loadu_si256((const void *)(x + 16))));
}

#define GROUP_KERNEL(name, BLOCK, XS)                                                                              \
    static void name(size_t r0, size_t r1) {                                                                       \
        const int blocks = C / 32;                                                                                 \
        for (size_t r = r0; r < r1; r++) {                                                                         \
            const uint8_t *row = W + r * blocks * BLOCK_BYTES;                                                     \
            __m256 acc = _mm256_setzero_ps();                                                                      \
            for (int b = 0; b < blocks; b += 8) {                                                                  \
                const uint8_t *g = row + b * BLOCK_BYTES;                                                          \
                const int16_t *x = XS + b * 32;                                                                    \
                for (int l = 0; l < 8 * BLOCK_BYTES; l += 64) _mm_prefetch((const char *)g + PREFETCH + l, _MM_HINT_T0); \
                __m256i s = reduce8(BLOCK(g, x), BLOCK(g + 34, x + 32), BLOCK(g + 68, x + 64), BLOCK(g + 102, x + 96), \
                                    BLOCK(g + 136, x + 128), BLOCK(g + 170, x + 160), BLOCK(g + 204, x + 192),     \
                                    BLOCK(g + 238, x + 224));                                                      \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(scales8(g), _mm256_loadu_ps(D16 + b)), acc); \
            }                                                                                                      \
            OUT[r] = hsum(acc);                                                                                    \
        }                                                                                                          \
    }
GROUP_KERNEL(cvt16, cvtBlock, X16)
GROUP_KERNEL(split16, splitBlock, X16S)

// Four blocks per register: hadd(hadd(p0,p1),hadd(p2,p3)) leaves [Σlo0 Σlo1 Σlo2 Σlo3 | Σhi0 …] per half;
// the halves are added in float at the end (the scale vector repeats the four block scales in both halves).
#define QUAD_KERNEL(name, BLOCK, XS, DS)                                                                          \
    static void name(size_t r0, size_t r1) {                                                                      \
        const int blocks = C / 32;                                                                                \
        for (size_t r = r0; r < r1; r++) {                                                                        \
            const uint8_t *row = W + r * blocks * BLOCK_BYTES;                                                    \
            __m256 acc = _mm256_setzero_ps();                                                                     \
            for (int b = 0; b < blocks; b += 4) {                                                                 \
                const uint8_t *g = row + b * BLOCK_BYTES;                                                         \
                for (int l = 0; l < 4 * BLOCK_BYTES; l += 64) _mm_prefetch((const char *)g + PREFETCH + l, _MM_HINT_T0); \
                __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(BLOCK(g, XS + b * 32), BLOCK(g + 34, XS + b * 32 + 32)), \
                                              _mm256_hadd_epi32(BLOCK(g + 68, XS + b * 32 + 64), BLOCK(g + 102, XS + b * 32 + 96))); \
                __m128i h = _mm_setzero_si128();                                                                  \
                h = _mm_insert_epi16(h, *(const uint16_t *)(g + 0), 0);                                           \
                h = _mm_insert_epi16(h, *(const uint16_t *)(g + 34), 1);                                          \
                h = _mm_insert_epi16(h, *(const uint16_t *)(g + 68), 2);                                          \
                h = _mm_insert_epi16(h, *(const uint16_t *)(g + 102), 3);                                         \
                __m128 d4 = _mm_mul_ps(_mm_cvtph_ps(h), _mm_loadu_ps(DS + b));                                    \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set_m128(d4, d4), acc);                       \
            }                                                                                                     \
            OUT[r] = hsum(acc);                                                                                   \
        }                                                                                                         \
    }
QUAD_KERNEL(split16q, splitBlock, X16S, D16)

// split16 with one cvt and FMA per block (its scale broadcast), as llama.cpp scales its blocks.
static void split16b(size_t r0, size_t r1) {
    const int blocks = C / 32;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = W + r * blocks * BLOCK_BYTES;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *blk = row + b * BLOCK_BYTES;
            _mm_prefetch((const char *)blk + PREFETCH, _MM_HINT_T0);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(half(blk) * D16[b]), _mm256_cvtepi32_ps(splitBlock(blk, X16S + b * 32)), acc);
        }
        OUT[r] = hsum(acc);
    }
}

// Blocks k and k + 4 of a group share registers (16 bytes of each per register, as InternKit's Q4_0 kernel
// pairs its nibble blocks): two registers per pair, four vpmaddwd, then three vphaddd leave the eight block
// sums in block order. Activations: per pair, runs of 8 (block k, then block k + 4) of the even and odd
// weights of bytes 0–15 and of bytes 16–31 (XP).
static int16_t *XP;
static inline __m256i pairSum(const uint8_t *a, const int16_t *x) {
    const uint8_t *b = a + 4 * BLOCK_BYTES;
    __m256i w0 = _mm256_set_m128i(_mm_loadu_si128((const void *)(b + 2)), _mm_loadu_si128((const void *)(a + 2)));
    __m256i w1 = _mm256_set_m128i(_mm_loadu_si128((const void *)(b + 18)), _mm_loadu_si128((const void *)(a + 18)));
    __m256i e0 = _mm256_srai_epi16(_mm256_slli_epi16(w0, 8), 8), o0 = _mm256_srai_epi16(w0, 8);
    __m256i e1 = _mm256_srai_epi16(_mm256_slli_epi16(w1, 8), 8), o1 = _mm256_srai_epi16(w1, 8);
    return _mm256_add_epi32(
        _mm256_add_epi32(_mm256_madd_epi16(e0, _mm256_loadu_si256((const void *)x)), _mm256_madd_epi16(o0, _mm256_loadu_si256((const void *)(x + 16)))),
        _mm256_add_epi32(_mm256_madd_epi16(e1, _mm256_loadu_si256((const void *)(x + 32))), _mm256_madd_epi16(o1, _mm256_loadu_si256((const void *)(x + 48)))));
}
static void pair16(size_t r0, size_t r1) {
    const int blocks = C / 32;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = W + r * blocks * BLOCK_BYTES;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b += 8) {
            const uint8_t *g = row + b * BLOCK_BYTES;
            const int16_t *x = XP + b * 32;
            for (int l = 0; l < 8 * BLOCK_BYTES; l += 64) _mm_prefetch((const char *)g + PREFETCH + l, _MM_HINT_T0);
            __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(pairSum(g, x), pairSum(g + 34, x + 64)),
                                          _mm256_hadd_epi32(pairSum(g + 68, x + 128), pairSum(g + 102, x + 192)));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(scales8(g), _mm256_loadu_ps(D16 + b)), acc);
        }
        OUT[r] = hsum(acc);
    }
}

static inline __m256i int8Block(const uint8_t *b, const int8_t *x) {
    __m256i w = _mm256_loadu_si256((const void *)(b + 2)), xv = _mm256_loadu_si256((const void *)x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xv, w)), _mm256_set1_epi16(1));
}
// int8 blocks reduced four to a register as split16/4.
QUAD_KERNEL(int8q, int8Block, X8, D8)

static void int8(size_t r0, size_t r1) {
    const int blocks = C / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = W + r * blocks * BLOCK_BYTES;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *blk = row + b * BLOCK_BYTES;
            __m256i w = _mm256_loadu_si256((const void *)(blk + 2)), x = _mm256_loadu_si256((const void *)(X8 + b * 32));
            __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)), ones);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(half(blk) * D8[b]), _mm256_cvtepi32_ps(dot), acc);
        }
        OUT[r] = hsum(acc);
    }
}

// The bytes alone: one 32-byte load and an OR per 64 bytes, the rate the matrix can stream at.
static void stream(size_t r0, size_t r1) {
    const size_t rowBytes = C / 32 * BLOCK_BYTES;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = W + r * rowBytes;
        __m256i acc = _mm256_setzero_si256();
        for (size_t i = 0; i + 32 <= rowBytes; i += 64) acc = _mm256_or_si256(acc, _mm256_loadu_si256((const void *)(row + i)));
        OUT[r] = (float)_mm256_extract_epi32(acc, 0);
    }
}

typedef void (*Kernel)(size_t, size_t);
typedef struct { Kernel kernel; size_t r0, r1; } Job;
static void *work(void *p) {
    Job *j = p;
    j->kernel(j->r0, j->r1);
    return 0;
}
static double pass(Kernel k, int threads) {
    pthread_t t[16];
    Job jobs[16];
    double start = now();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (Job){k, R * i / threads, R * (i + 1) / threads};
        pthread_create(&t[i], 0, work, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
    return now() - start;
}
static int compare(const void *a, const void *b) { return (*(const double *)a > *(const double *)b) - (*(const double *)a < *(const double *)b); }
static double check(Kernel k, const double *ref) {
    k(0, R);
    double worst = 0;
    for (size_t r = 0; r < R; r++) worst = fmax(worst, fabs(OUT[r] - ref[r]) / (fabs(ref[r]) + 1e-3));
    return worst;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s THREADS REPS COLS\n", argv[0]); return 2; }
    const int threads = atoi(argv[1]), reps = atoi(argv[2]);
    C = atoi(argv[3]);
    if (threads < 1 || threads > 16 || reps < 1 || reps > 64 || C < 256 || C % 256) { fprintf(stderr, "bad arguments (COLS: a multiple of 256)\n"); return 2; }
    const int blocks = C / 32;
    R = (size_t)(200e6 / (blocks * BLOCK_BYTES));
    W = mmap(0, R * blocks * BLOCK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    // HUGE=1: ask for 2 MiB pages (transparent huge pages in "madvise" mode), HUGE=0: forbid them.
    const char *huge = getenv("HUGE");
    if (huge) madvise(W, R * blocks * BLOCK_BYTES, huge[0] == '1' ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    srand(1);
    for (size_t i = 0; i < R * blocks; i++) {
        uint8_t *b = W + i * BLOCK_BYTES;
        uint16_t h = _cvtss_sh(0.02f / 127 * (0.5f + (float)rand() / (float)RAND_MAX), 0);
        memcpy(b, &h, 2);
        for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)(rand() % 255 - 127);
    }
    XP = aligned_alloc(64, C * 2);
    X16 = aligned_alloc(64, C * 2), X16S = aligned_alloc(64, C * 2), X8 = aligned_alloc(64, C);
    D16 = aligned_alloc(64, blocks * 4), D8 = aligned_alloc(64, blocks * 4), OUT = aligned_alloc(64, R * 4);
    float *x = malloc(C * 4);
    for (int i = 0; i < C; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (int b = 0; b < blocks; b++) {
        float m = 0;
        for (int j = 0; j < 32; j++) m = fmaxf(m, fabsf(x[b * 32 + j]));
        D16[b] = m / 32767, D8[b] = m / 127;
        for (int j = 0; j < 32; j++) {
            X16[b * 32 + j] = (int16_t)lrintf(x[b * 32 + j] / D16[b]);
            X8[b * 32 + j] = (int8_t)lrintf(x[b * 32 + j] / D8[b]);
        }
        for (int j = 0; j < 16; j++) X16S[b * 32 + j] = X16[b * 32 + 2 * j], X16S[b * 32 + 16 + j] = X16[b * 32 + 2 * j + 1];
    }
    for (int g = 0; g < blocks / 8; g++)
        for (int k = 0; k < 4; k++)
            for (int run = 0; run < 4; run++)
                for (int lane = 0; lane < 16; lane++) {
                    const int block = g * 8 + (lane < 8 ? k : k + 4), j = lane % 8;
                    const int element = (run / 2) * 16 + 2 * j + run % 2;  // runs: even 0–15, odd 0–15, even 16–31, odd 16–31
                    XP[g * 256 + k * 64 + run * 16 + lane] = X16[block * 32 + element];
                }
    REF16 = malloc(R * 8), REF8 = malloc(R * 8);
    for (size_t r = 0; r < R; r++) {
        double s16 = 0, s8 = 0;
        for (int b = 0; b < blocks; b++) {
            const uint8_t *blk = W + (r * blocks + b) * BLOCK_BYTES;
            double d = half(blk);
            for (int j = 0; j < 32; j++) {
                double w = d * (int8_t)blk[2 + j];
                s16 += w * D16[b] * X16[b * 32 + j], s8 += w * D8[b] * X8[b * 32 + j];
            }
        }
        REF16[r] = s16, REF8[r] = s8;
    }
    enum { K = 8 };
    const char *names[K] = {"cvt16", "split16", "split16/4", "split16b", "pair16", "int8", "int8/4", "stream"};
    Kernel kernels[K] = {cvt16, split16, split16q, split16b, pair16, int8, int8q, stream};
    const double *refs[K - 1] = {REF16, REF16, REF16, REF16, REF16, REF8, REF8};
    printf("%zu × %d Q8_0 (%.0f MB), %d threads; largest relative error vs double:", R, C, R * blocks * BLOCK_BYTES / 1e6, threads);
    for (int k = 0; k + 1 < K; k++) printf(" %s %.1e", names[k], check(kernels[k], refs[k]));
    printf("\n");
    double rates[K][64];
    for (int rep = 0; rep < reps; rep++)
        for (int k = 0; k < K; k++) rates[k][rep] = R * C / pass(kernels[k], threads) / 1e9;
    for (int k = 0; k < K; k++) {
        qsort(rates[k], reps, sizeof(double), compare);
        printf("%-10s %6.2f Gweights/s  %5.2f GB/s (quartiles %.2f–%.2f)\n", names[k], rates[k][reps / 2],
               rates[k][reps / 2] * BLOCK_BYTES / 32, rates[k][reps / 4], rates[k][3 * reps / 4]);
    }
    return 0;
}
