// Is Q8_0 decode bound by arithmetic or by memory on an AVX-512 machine? Prototypes of one row · one token
// over a Q8_0 matrix of MB megabytes on N threads (rows split evenly), medians of REPS passes, in billions
// of weights per second; a matrix that fits in L2 (e.g. 0.5 MB) shows the arithmetic's own rate, a 200 MB
// one the rate memory allows.
//   cur       InternKit's AVX-512 kernel (Sources/InternKernels/QuantizedInt16.swift): int16 activations,
//             blocks k and k + 1 widened by vpmovsxbw into one register, vpmaddwd + vpdpwssd, a vpermt2d
//             tree leaves eight block sums, one cvt and FMA per eight blocks
//   cur-t1    `cur` with its prefetches into L2 only (T1 hint; the lines reach L1 when read)
//   cur-4k    diagnostic, wrong results: `cur` with the activations of every 2048 columns read again, so they
//             take 4 KiB of L1 instead of 2 bytes a column (16 KiB at 8192 columns, 1.8B's `w2`)
//   cur2      `cur` on two rows at a time, each group's activation loads shared by both rows
//   cseg      `cur` on tiles of 8 rows in segments of 2048 columns (each row's FMAs in `cur`'s order, 4 KiB of
//             activations per segment), prefetching the same place in the next row
//   split     the same, the weights' even and odd bytes sign-extended by word shifts (no vpmovsxbw)
//   int8vnni  llama.cpp's arithmetic: int8 activations, vpdpbusd on 256 bits, one cvt and FMA per block
//   stream    no arithmetic: 512-bit loads OR-ed together (the rate the bytes alone stream at)
// Every kernel prefetches each cache line PREFETCH bytes ahead (argument 5, 0 = none; InternKit: 4096) and
// is checked against a double-precision product of the de-quantized operands (but cur-4k). The matrix lies in
// transparent huge pages, as InternKit's weight copies (PageBuffer.swift; 4 KiB pages before 2026-12-07's
// fifth session).
//   clang -O2 -march=native -pthread Benchmarks/q8_0-avx512/q8_0-avx512-bench.c -o /tmp/q8avx512 -lm
//   /tmp/q8avx512 THREADS REPS COLS MB [PREFETCH]       e.g. 2 5 2048 200, 1 5 2048 0.5
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { BLOCK_BYTES = 34 };
static int prefetchDistance = 4096;
static size_t R;
static int C;
static uint8_t *W;               // R rows of C/32 blocks: f16 scale, 32 int8
static int16_t *XPAIR, *XSPLIT;  // int16 activations in `cur`'s and `split`'s orders
static int8_t *X8;               // int8 activations (llama.cpp's)
static float *D16, *D8, *OUT;    // activation scales per block; one output per row
static __m512i QUARTERS0, QUARTERS1, EIGHTHS0, EIGHTHS1, EVEN_ODD;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static inline float half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
// The f16 scales of eight consecutive blocks, gathered by two word permutes (as InternKit does).
static inline __m256 scales8(const uint8_t *first) {
    const __m512i index = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 51, 34, 17, 0);
    __m512i low = _mm512_permutex2var_epi16(_mm512_loadu_si512(first), index, _mm512_loadu_si512(first + 64));
    __m512i high = _mm512_permutex2var_epi16(_mm512_loadu_si512(first + 136), index, _mm512_loadu_si512(first + 200));
    return _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm512_castsi512_si128(low), _mm512_castsi512_si128(high)));
}
// Four pair products (16 lanes: 8 for each block of the pair) folded into eight block sums.
static inline __m256i reduce4(__m512i p0, __m512i p1, __m512i p2, __m512i p3) {
    __m512i q0 = _mm512_add_epi32(_mm512_permutex2var_epi32(p0, QUARTERS0, p1), _mm512_permutex2var_epi32(p0, QUARTERS1, p1));
    __m512i q1 = _mm512_add_epi32(_mm512_permutex2var_epi32(p2, QUARTERS0, p3), _mm512_permutex2var_epi32(p2, QUARTERS1, p3));
    __m512i r = _mm512_add_epi32(_mm512_permutex2var_epi32(q0, EIGHTHS0, q1), _mm512_permutex2var_epi32(q0, EIGHTHS1, q1));
    r = _mm512_permutexvar_epi32(EVEN_ODD, r);
    return _mm256_add_epi32(_mm512_castsi512_si256(r), _mm512_extracti64x4_epi64(r, 1));
}
// Blocks a and a + 1: [a 0..15 | b 0..15] and [a 16..31 | b 16..31] widened by vpmovsxbw.
static inline __m512i curPair(const uint8_t *a, const int16_t *x) {
    const uint8_t *b = a + BLOCK_BYTES;
    __m512i lo = _mm512_cvtepi8_epi16(_mm256_set_m128i(_mm_loadu_si128((const void *)(b + 2)), _mm_loadu_si128((const void *)(a + 2))));
    __m512i hi = _mm512_cvtepi8_epi16(_mm256_set_m128i(_mm_loadu_si128((const void *)(b + 18)), _mm_loadu_si128((const void *)(a + 18))));
    return _mm512_dpwssd_epi32(_mm512_madd_epi16(lo, _mm512_loadu_si512(x)), hi, _mm512_loadu_si512(x + 32));
}
// Blocks a and a + 1 as [a 32 bytes | b 32 bytes]; even and odd bytes sign-extended by word shifts.
static inline __m512i splitPair(const uint8_t *a, const int16_t *x) {
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const void *)(a + 2))),
                                   _mm256_loadu_si256((const void *)(a + BLOCK_BYTES + 2)), 1);
    __m512i even = _mm512_srai_epi16(_mm512_slli_epi16(w, 8), 8), odd = _mm512_srai_epi16(w, 8);
    return _mm512_dpwssd_epi32(_mm512_madd_epi16(even, _mm512_loadu_si512(x)), odd, _mm512_loadu_si512(x + 32));
}
#define GROUP_KERNEL(name, PAIR, XS, HINT, XBLOCK)                                                                    \
    static void name(size_t r0, size_t r1) {                                                                          \
        const int blocks = C / 32;                                                                                    \
        for (size_t r = r0; r < r1; r++) {                                                                            \
            const uint8_t *row = W + r * blocks * BLOCK_BYTES;                                                        \
            __m256 acc = _mm256_setzero_ps();                                                                         \
            for (int b = 0; b < blocks; b += 8) {                                                                     \
                const uint8_t *g = row + b * BLOCK_BYTES;                                                             \
                const int16_t *x = XS + (XBLOCK) * 32;                                                                \
                if (prefetchDistance)                                                                                 \
                    for (int l = 0; l < 8 * BLOCK_BYTES; l += 64) _mm_prefetch((const char *)g + prefetchDistance + l, HINT); \
                __m256i s = reduce4(PAIR(g, x), PAIR(g + 68, x + 64), PAIR(g + 136, x + 128), PAIR(g + 204, x + 192)); \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(scales8(g), _mm256_loadu_ps(D16 + b)), acc); \
            }                                                                                                         \
            OUT[r] = hsum(acc);                                                                                       \
        }                                                                                                             \
    }
GROUP_KERNEL(cur, curPair, XPAIR, _MM_HINT_T0, b)
GROUP_KERNEL(curT1, curPair, XPAIR, _MM_HINT_T1, b)
GROUP_KERNEL(cur4k, curPair, XPAIR, _MM_HINT_T0, b % 64)
GROUP_KERNEL(split, splitPair, XSPLIT, _MM_HINT_T0, b)

static void cur2(size_t r0, size_t r1) {
    const int blocks = C / 32;
    const size_t rowBytes = (size_t)blocks * BLOCK_BYTES;
    size_t r = r0;
    for (; r + 2 <= r1; r += 2) {
        const uint8_t *row0 = W + r * rowBytes, *row1 = row0 + rowBytes;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
        for (int b = 0; b < blocks; b += 8) {
            const uint8_t *g0 = row0 + b * BLOCK_BYTES, *g1 = row1 + b * BLOCK_BYTES;
            const int16_t *x = XPAIR + b * 32;
            if (prefetchDistance)
                for (int l = 0; l < 8 * BLOCK_BYTES; l += 64) {
                    _mm_prefetch((const char *)g0 + prefetchDistance + l, _MM_HINT_T0);
                    _mm_prefetch((const char *)g1 + prefetchDistance + l, _MM_HINT_T0);
                }
            const __m256 dx = _mm256_loadu_ps(D16 + b);
            __m256i s0 = reduce4(curPair(g0, x), curPair(g0 + 68, x + 64), curPair(g0 + 136, x + 128), curPair(g0 + 204, x + 192));
            __m256i s1 = reduce4(curPair(g1, x), curPair(g1 + 68, x + 64), curPair(g1 + 136, x + 128), curPair(g1 + 204, x + 192));
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_mul_ps(scales8(g0), dx), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_mul_ps(scales8(g1), dx), acc1);
        }
        OUT[r] = hsum(acc0), OUT[r + 1] = hsum(acc1);
    }
    if (r < r1) cur(r, r1);
}

enum { SEG_BLOCKS = 64, TILE_ROWS = 8 };
static void cseg(size_t r0, size_t r1) {
    const int blocks = C / 32;
    const size_t rowBytes = (size_t)blocks * BLOCK_BYTES;
    size_t r = r0;
    for (; r + TILE_ROWS <= r1; r += TILE_ROWS) {
        const uint8_t *tile = W + r * rowBytes;
        __m256 acc[TILE_ROWS];
        for (int i = 0; i < TILE_ROWS; i++) acc[i] = _mm256_setzero_ps();
        for (int seg = 0; seg < blocks; seg += SEG_BLOCKS) {
            const int end = seg + SEG_BLOCKS < blocks ? seg + SEG_BLOCKS : blocks;
            for (int i = 0; i < TILE_ROWS; i++) {
                const uint8_t *row = tile + i * rowBytes;
                const ptrdiff_t ahead = i + 1 < TILE_ROWS ? (ptrdiff_t)rowBytes
                                                          : -(ptrdiff_t)(TILE_ROWS - 1) * (ptrdiff_t)rowBytes + SEG_BLOCKS * BLOCK_BYTES;
                __m256 a = acc[i];
                for (int b = seg; b < end; b += 8) {
                    const uint8_t *g = row + b * BLOCK_BYTES;
                    const int16_t *x = XPAIR + b * 32;
                    if (prefetchDistance)
                        for (int l = 0; l < 8 * BLOCK_BYTES; l += 64) _mm_prefetch((const char *)g + ahead + l, _MM_HINT_T0);
                    __m256i s = reduce4(curPair(g, x), curPair(g + 68, x + 64), curPair(g + 136, x + 128), curPair(g + 204, x + 192));
                    a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(scales8(g), _mm256_loadu_ps(D16 + b)), a);
                }
                acc[i] = a;
            }
        }
        for (int i = 0; i < TILE_ROWS; i++) OUT[r + i] = hsum(acc[i]);
    }
    if (r < r1) cur(r, r1);
}

// llama.cpp's ggml_vec_dot_q8_0_q8_0 with AVX512-VNNI on 256 bits: vpsignb ×2, vpdpbusd, cvt and FMA per block.
static void int8vnni(size_t r0, size_t r1) {
    const int blocks = C / 32;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = W + r * blocks * BLOCK_BYTES;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * BLOCK_BYTES;
            if (prefetchDistance) _mm_prefetch((const char *)block + prefetchDistance, _MM_HINT_T0);
            __m256i w = _mm256_loadu_si256((const void *)(block + 2)), x = _mm256_loadu_si256((const void *)(X8 + b * 32));
            __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(half(block) * D8[b]), _mm256_cvtepi32_ps(dot), acc);
        }
        OUT[r] = hsum(acc);
    }
}

static void stream(size_t r0, size_t r1) {
    const size_t rowBytes = C / 32 * BLOCK_BYTES;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = W + r * rowBytes;
        __m512i acc = _mm512_setzero_si512();
        for (size_t i = 0; i + 64 <= rowBytes; i += 64) acc = _mm512_or_si512(acc, _mm512_loadu_si512(row + i));
        OUT[r] = (float)_mm512_reduce_add_epi32(acc);
    }
}

typedef void (*Kernel)(size_t, size_t);
typedef struct { Kernel kernel; size_t r0, r1; int rounds; } Job;
static int rounds = 1;  // passes per timing (small matrices run many to time something measurable)
static void *work(void *p) {
    Job *j = p;
    for (int i = 0; i < j->rounds; i++) j->kernel(j->r0, j->r1);
    return 0;
}
static double pass(Kernel k, int threads) {
    pthread_t t[16];
    Job jobs[16];
    double start = now();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (Job){k, R * i / threads, R * (i + 1) / threads, rounds};
        pthread_create(&t[i], 0, work, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
    return (now() - start) / rounds;
}
static int compare(const void *a, const void *b) { return (*(const double *)a > *(const double *)b) - (*(const double *)a < *(const double *)b); }
static double check(Kernel k, const double *ref) {
    k(0, R);
    double worst = 0;
    for (size_t r = 0; r < R; r++) worst = fmax(worst, fabs(OUT[r] - ref[r]) / (fabs(ref[r]) + 1e-3));
    return worst;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s THREADS REPS COLS MB [PREFETCH]\n", argv[0]); return 2; }
    const int threads = atoi(argv[1]), reps = atoi(argv[2]);
    C = atoi(argv[3]);
    const double megabytes = atof(argv[4]);
    if (argc > 5) prefetchDistance = atoi(argv[5]);
    if (threads < 1 || threads > 16 || reps < 1 || reps > 64 || C < 256 || C % 256 || megabytes <= 0) {
        fprintf(stderr, "bad arguments (COLS: a multiple of 256)\n");
        return 2;
    }
    QUARTERS0 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
    QUARTERS1 = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    EIGHTHS0 = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
    EIGHTHS1 = _mm512_setr_epi32(2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    EVEN_ODD = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const int blocks = C / 32;
    R = (size_t)(megabytes * 1e6 / (blocks * BLOCK_BYTES));
    if (R < (size_t)threads) { fprintf(stderr, "matrix too small\n"); return 2; }
    rounds = megabytes < 50 ? (int)(200 / megabytes) : 1;
    W = mmap(0, R * blocks * BLOCK_BYTES + 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(W, R * blocks * BLOCK_BYTES + 8192, MADV_HUGEPAGE);
    srand(1);
    for (size_t i = 0; i < R * blocks; i++) {
        uint8_t *b = W + i * BLOCK_BYTES;
        uint16_t h = _cvtss_sh(0.02f / 127 * (0.5f + (float)rand() / (float)RAND_MAX), 0);
        memcpy(b, &h, 2);
        for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)(rand() % 255 - 127);
    }
    int16_t *x16 = aligned_alloc(64, C * 2);
    XPAIR = aligned_alloc(64, C * 2), XSPLIT = aligned_alloc(64, C * 2), X8 = aligned_alloc(64, C);
    D16 = aligned_alloc(64, blocks * 4), D8 = aligned_alloc(64, blocks * 4), OUT = aligned_alloc(64, R * 4);
    float *x = malloc(C * 4);
    for (int i = 0; i < C; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (int b = 0; b < blocks; b++) {
        float m = 0;
        for (int j = 0; j < 32; j++) m = fmaxf(m, fabsf(x[b * 32 + j]));
        D16[b] = m / 32767, D8[b] = m / 127;
        for (int j = 0; j < 32; j++) {
            x16[b * 32 + j] = (int16_t)lrintf(x[b * 32 + j] / D16[b]);
            X8[b * 32 + j] = (int8_t)lrintf(x[b * 32 + j] / D8[b]);
        }
    }
    for (int p = 0; p < blocks / 2; p++) {
        const int16_t *a = x16 + 64 * p, *b = a + 32;
        for (int j = 0; j < 16; j++) {
            XPAIR[64 * p + j] = a[j], XPAIR[64 * p + 16 + j] = b[j], XPAIR[64 * p + 32 + j] = a[16 + j], XPAIR[64 * p + 48 + j] = b[16 + j];
            XSPLIT[64 * p + j] = a[2 * j], XSPLIT[64 * p + 16 + j] = b[2 * j], XSPLIT[64 * p + 32 + j] = a[2 * j + 1], XSPLIT[64 * p + 48 + j] = b[2 * j + 1];
        }
    }
    double *ref16 = malloc(R * 8), *ref8 = malloc(R * 8);
    for (size_t r = 0; r < R; r++) {
        double s16 = 0, s8 = 0;
        for (int b = 0; b < blocks; b++) {
            const uint8_t *block = W + (r * blocks + b) * BLOCK_BYTES;
            const double d = half(block);
            for (int j = 0; j < 32; j++) {
                const double w = d * (int8_t)block[2 + j];
                s16 += w * D16[b] * x16[b * 32 + j], s8 += w * D8[b] * X8[b * 32 + j];
            }
        }
        ref16[r] = s16, ref8[r] = s8;
    }
    enum { K = 8 };
    const char *names[K] = {"cur", "cur-t1", "cur-4k", "cur2", "cseg", "split", "int8vnni", "stream"};
    Kernel kernels[K] = {cur, curT1, cur4k, cur2, cseg, split, int8vnni, stream};
    const double *refs[K - 1] = {ref16, ref16, 0, ref16, ref16, ref16, ref8};
    printf("%zu x %d Q8_0 (%.1f MB), %d threads, prefetch %d; largest relative error vs double:", R, C, R * blocks * BLOCK_BYTES / 1e6,
           threads, prefetchDistance);
    for (int k = 0; k + 1 < K; k++)
        if (refs[k]) printf(" %s %.1e", names[k], check(kernels[k], refs[k]));
    printf("\n");
    double rates[K][64];
    for (int rep = 0; rep < reps; rep++)
        for (int k = 0; k < K; k++) rates[k][rep] = R * C / pass(kernels[k], threads) / 1e9;
    for (int k = 0; k < K; k++) {
        qsort(rates[k], reps, sizeof(double), compare);
        printf("%-9s %6.2f Gweights/s %6.2f GB/s (quartiles %.2f-%.2f)\n", names[k], rates[k][reps / 2],
               rates[k][reps / 2] * BLOCK_BYTES / 32, rates[k][reps / 4], rates[k][3 * reps / 4]);
    }
    return 0;
}
