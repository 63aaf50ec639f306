// Why InternKit packs bf16 weights to 12 bits for decode (Sources/InternKernels/PackedBFloat16.swift): the
// prototype of its kernels against llama.cpp's bf16 arithmetic, streaming a 400 MB matrix once per pass, on
// N threads (rows split evenly), medians of REPS passes, in billions of weights per second.
//   f32-act   bf16 widened to f32 by a shift, exact f32 activations (InternKit's plain bf16 decode, one row)
//   vdpbf16ps bf16 × bf16-rounded activations, `vdpbf16ps` (llama.cpp's ggml_vec_dot_bf16 on AVX512-BF16)
//   packed    the 12-bit layout: 64 low bytes + 32 bytes of 4-bit codes per 64 weights, one row at a time
//   packed×4  the same, 4 rows sharing each activation load (InternKit's path for rows over 4096 columns)
//   packed-dp the 12-bit layout decoded to bf16 words, × bf16-rounded activations permuted to the words' order,
//             `vdpbf16ps` (InternKit's default decode on AVX512-BF16 hosts, one row up to 8192 columns)
//   packed-dp×4 the same in 4-row tiles (InternKit's path beyond 8192 columns)
// Build and run (AVX-512 BW and AVX512-BF16, or AVX2 + FMA: then vdpbf16ps is f32-act again):
//   clang -O2 -march=native -pthread Benchmarks/packed-bf16/packed-bf16-bench.c -o /tmp/packed-bf16-bench -lm
//   /tmp/packed-bf16-bench THREADS REPS COLS        e.g. 2 12 2048
// Weights are uniform with standard deviation 0.02 (as `intern init`); the packed results are checked against
// the f32-activation kernel (their difference is rounding order plus the exceptions this prototype skips).
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static size_t R;
static int C;
static uint16_t *W;
static uint8_t *Z, TABLE[16];
static float *X, *XP, *OUT, *OUT2;
static uint16_t *XB, *XBP;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
#if defined(__AVX512BW__) && defined(__AVX512BF16__)
static inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
#define WIDEN(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(p))), 16))

static void f32act(size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
        const uint16_t *w = W + r * C;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < C; c += 64) {
            a0 = _mm512_fmadd_ps(WIDEN(w + c), _mm512_loadu_ps(X + c), a0);
            a1 = _mm512_fmadd_ps(WIDEN(w + c + 16), _mm512_loadu_ps(X + c + 16), a1);
            a2 = _mm512_fmadd_ps(WIDEN(w + c + 32), _mm512_loadu_ps(X + c + 32), a2);
            a3 = _mm512_fmadd_ps(WIDEN(w + c + 48), _mm512_loadu_ps(X + c + 48), a3);
        }
        OUT[r] = hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

static void dpbf16(size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
        const uint16_t *w = W + r * C;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        for (int c = 0; c < C; c += 64) {
            a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(w + c), (__m512bh)_mm512_loadu_si512(XB + c));
            a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(w + c + 32), (__m512bh)_mm512_loadu_si512(XB + c + 32));
        }
        OUT2[r] = hsum(_mm512_add_ps(a0, a1));
    }
}

// One chunk of 64 packed weights as four f32 vectors (weights 16l+2d, 16l+2d+1, 16l+8+2d, 16l+9+2d at lane 4l+d).
static inline void decode(const uint8_t *z, __m512i table, __m512 v[4]) {
    const __m512i low = _mm512_loadu_si512(z), odd = _mm512_set1_epi32((int)0xFFFF0000);
    const __m256i n = _mm256_loadu_si256((const void *)(z + 64));
    const __m512i codes = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(n), _mm256_srli_epi16(n, 4), 1), _mm512_set1_epi8(15));
    const __m512i top = _mm512_shuffle_epi8(table, codes);
    const __m512i lo = _mm512_unpacklo_epi8(low, top), hi = _mm512_unpackhi_epi8(low, top);
    v[0] = _mm512_castsi512_ps(_mm512_slli_epi32(lo, 16));
    v[1] = _mm512_castsi512_ps(_mm512_and_si512(lo, odd));
    v[2] = _mm512_castsi512_ps(_mm512_slli_epi32(hi, 16));
    v[3] = _mm512_castsi512_ps(_mm512_and_si512(hi, odd));
}

static void packed(size_t r0, size_t r1) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)TABLE));
    const size_t rowBytes = C / 64 * 96;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *z = Z + r * rowBytes;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, v[4];
        for (int c = 0; c < C; c += 64, z += 96) {
            // No software prefetch, as InternKit's AVX-512 kernel: in huge pages 4 KiB-ahead prefetches cost
            // 14.7 → 20.4 Gweights/s at 2048 columns on 2 Zen 4 threads.
            decode(z, table, v);
            a0 = _mm512_fmadd_ps(v[0], _mm512_loadu_ps(XP + c), a0);
            a1 = _mm512_fmadd_ps(v[1], _mm512_loadu_ps(XP + c + 16), a1);
            a2 = _mm512_fmadd_ps(v[2], _mm512_loadu_ps(XP + c + 32), a2);
            a3 = _mm512_fmadd_ps(v[3], _mm512_loadu_ps(XP + c + 48), a3);
        }
        OUT2[r] = hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

static void packed4(size_t r0, size_t r1) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)TABLE));
    const size_t rowBytes = C / 64 * 96;
    for (size_t r = r0; r + 3 < r1; r += 4) {
        const uint8_t *z = Z + r * rowBytes;
        __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()}, v[4];
        for (int c = 0; c < C; c += 64, z += 96) {
            const __m512 x0 = _mm512_loadu_ps(XP + c), x1 = _mm512_loadu_ps(XP + c + 16);
            const __m512 x2 = _mm512_loadu_ps(XP + c + 32), x3 = _mm512_loadu_ps(XP + c + 48);
            for (int i = 0; i < 4; i++) {
                decode(z + i * rowBytes, table, v);
                a[i] = _mm512_fmadd_ps(v[3], x3, _mm512_fmadd_ps(v[2], x2, _mm512_fmadd_ps(v[1], x1, _mm512_fmadd_ps(v[0], x0, a[i]))));
            }
        }
        for (int i = 0; i < 4; i++) OUT2[r + i] = hsum(a[i]);
    }
}

// The 12-bit layout into bf16 words, times bf16-rounded activations with `vdpbf16ps` (llama.cpp's arithmetic):
// the two word vectors of a chunk meet the activations permuted to their order (lane l: weights 16l+0…7, then
// 16l+8…15), without the shifts and masks that widen to f32 and with half the multiply instructions.
static inline void decodeWords(const uint8_t *z, __m512i table, __m512i *lo, __m512i *hi) {
    const __m512i low = _mm512_loadu_si512(z);
    const __m256i n = _mm256_loadu_si256((const void *)(z + 64));
    const __m512i codes = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(n), _mm256_srli_epi16(n, 4), 1), _mm512_set1_epi8(15));
    const __m512i top = _mm512_shuffle_epi8(table, codes);
    *lo = _mm512_unpacklo_epi8(low, top), *hi = _mm512_unpackhi_epi8(low, top);
}

static void packeddp(size_t r0, size_t r1) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)TABLE));
    const size_t rowBytes = C / 64 * 96;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *z = Z + r * rowBytes;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        __m512i lo, hi;
        for (int c = 0; c < C; c += 64, z += 96) {
            decodeWords(z, table, &lo, &hi);
            a0 = _mm512_dpbf16_ps(a0, (__m512bh)lo, (__m512bh)_mm512_loadu_si512(XBP + c));
            a1 = _mm512_dpbf16_ps(a1, (__m512bh)hi, (__m512bh)_mm512_loadu_si512(XBP + c + 32));
        }
        OUT2[r] = hsum(_mm512_add_ps(a0, a1));
    }
}

static void packeddp4(size_t r0, size_t r1) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)TABLE));
    const size_t rowBytes = C / 64 * 96;
    for (size_t r = r0; r + 3 < r1; r += 4) {
        const uint8_t *z = Z + r * rowBytes;
        __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        __m512i lo, hi;
        for (int c = 0; c < C; c += 64, z += 96) {
            const __m512i x0 = _mm512_loadu_si512(XBP + c), x1 = _mm512_loadu_si512(XBP + c + 32);
            for (int i = 0; i < 4; i++) {
                decodeWords(z + i * rowBytes, table, &lo, &hi);
                a[i] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(a[i], (__m512bh)lo, (__m512bh)x0), (__m512bh)hi, (__m512bh)x1);
            }
        }
        for (int i = 0; i < 4; i++) OUT2[r + i] = hsum(a[i]);
    }
}

#else
// AVX2 (InternKit's haswell tier): the same layout and activation permutation, the zmm lanes split over two ymm.
static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
#define WIDEN(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)(p))), 16))

static void f32act(size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
        const uint16_t *w = W + r * C;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < C; c += 32) {
            _mm_prefetch((const char *)(w + c) + 1024, _MM_HINT_T0);
            a0 = _mm256_fmadd_ps(WIDEN(w + c), _mm256_loadu_ps(X + c), a0);
            a1 = _mm256_fmadd_ps(WIDEN(w + c + 8), _mm256_loadu_ps(X + c + 8), a1);
            a2 = _mm256_fmadd_ps(WIDEN(w + c + 16), _mm256_loadu_ps(X + c + 16), a2);
            a3 = _mm256_fmadd_ps(WIDEN(w + c + 24), _mm256_loadu_ps(X + c + 24), a3);
        }
        OUT[r] = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
}

// Half a chunk (32 weights: low bytes at z, codes in the nibbles of n) as four f32 vectors.
static inline void decodeHalf(const uint8_t *z, __m256i codes, __m256i table, __m256 v[4]) {
    const __m256i low = _mm256_loadu_si256((const void *)z), odd = _mm256_set1_epi32((int)0xFFFF0000);
    const __m256i top = _mm256_shuffle_epi8(table, codes);
    const __m256i lo = _mm256_unpacklo_epi8(low, top), hi = _mm256_unpackhi_epi8(low, top);
    v[0] = _mm256_castsi256_ps(_mm256_slli_epi32(lo, 16));
    v[1] = _mm256_castsi256_ps(_mm256_and_si256(lo, odd));
    v[2] = _mm256_castsi256_ps(_mm256_slli_epi32(hi, 16));
    v[3] = _mm256_castsi256_ps(_mm256_and_si256(hi, odd));
}

// 64 packed weights times the permuted activations, into four accumulators (one FMA chain each, two per chunk).
static inline void dotChunk(const uint8_t *z, __m256i table, const float *xp, __m256 a[4]) {
    const __m256i n = _mm256_loadu_si256((const void *)(z + 64)), mask = _mm256_set1_epi8(15);
    __m256 v[4];
    decodeHalf(z, _mm256_and_si256(n, mask), table, v);
    for (int k = 0; k < 4; k++) a[k] = _mm256_fmadd_ps(v[k], _mm256_loadu_ps(xp + 16 * k), a[k]);
    decodeHalf(z + 32, _mm256_and_si256(_mm256_srli_epi16(n, 4), mask), table, v);
    for (int k = 0; k < 4; k++) a[k] = _mm256_fmadd_ps(v[k], _mm256_loadu_ps(xp + 16 * k + 8), a[k]);
}

static inline float hsum4(const __m256 a[4]) { return hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]))); }

static void packed(size_t r0, size_t r1) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)TABLE));
    const size_t rowBytes = C / 64 * 96;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *z = Z + r * rowBytes;
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int c = 0; c < C; c += 64, z += 96) {
            _mm_prefetch((const char *)z + 4096, _MM_HINT_T0);
            _mm_prefetch((const char *)z + 4096 + 64, _MM_HINT_T0);
            dotChunk(z, table, XP + c, a);
        }
        OUT2[r] = hsum4(a);
    }
}

static void packed4(size_t r0, size_t r1) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)TABLE));
    const size_t rowBytes = C / 64 * 96;
    for (size_t r = r0; r + 3 < r1; r += 4) {
        const uint8_t *z = Z + r * rowBytes;
        __m256 a[4][4];
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++) a[i][k] = _mm256_setzero_ps();
        for (int c = 0; c < C; c += 64, z += 96)
            for (int i = 0; i < 4; i++) {
                _mm_prefetch((const char *)z + i * rowBytes + 1536, _MM_HINT_T0);
                dotChunk(z + i * rowBytes, table, XP + c, a[i]);
            }
        for (int i = 0; i < 4; i++) OUT2[r + i] = hsum4(a[i]);
    }
}

static void dpbf16(size_t r0, size_t r1) { f32act(r0, r1); }
static void packeddp(size_t r0, size_t r1) { packed(r0, r1); }
static void packeddp4(size_t r0, size_t r1) { packed4(r0, r1); }  // no AVX512-BF16: llama.cpp widens bf16 as f32-act does
#endif

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
        jobs[i] = (Job){k, R * i / threads / 4 * 4, R * (i + 1) / threads / 4 * 4};
        pthread_create(&t[i], 0, work, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
    return now() - start;
}
static int compare(const void *a, const void *b) { return (*(const double *)a > *(const double *)b) - (*(const double *)a < *(const double *)b); }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s THREADS REPS COLS\n", argv[0]); return 2; }
    const int threads = atoi(argv[1]), reps = atoi(argv[2]);
    C = atoi(argv[3]);
    if (threads < 1 || threads > 16 || reps < 1 || reps > 64 || C < 64 || C % 64) { fprintf(stderr, "bad arguments\n"); return 2; }
    R = (size_t)(400e6 / (C * 2)) / 4 * 4;
    W = mmap(0, R * C * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(W, R * C * 2, MADV_HUGEPAGE);  // as InternKit's weight copies (PageBuffer.swift)
    int histogram[256] = {0}, used[256] = {0}, code[256] = {0};
    srand(1);
    for (size_t i = 0; i < R * C; i++) {
        float v = ((float)rand() / (float)RAND_MAX * 2 - 1) * 0.0346f;
        uint32_t b;
        memcpy(&b, &v, 4);
        W[i] = b >> 16;
        histogram[W[i] >> 8]++;
    }
    used[0] = 1;  // code 0: top byte 0x00; codes 1-15: the most common others
    for (int k = 1; k < 16; k++) {
        int best = -1;
        for (int h = 0; h < 256; h++)
            if (!used[h] && (best < 0 || histogram[h] > histogram[best])) best = h;
        TABLE[k] = best, used[best] = 1, code[best] = k;
    }
    size_t exceptions = 0;
    for (int h = 1; h < 256; h++)
        if (!code[h]) exceptions += histogram[h];
    const size_t rowBytes = C / 64 * 96;
    Z = mmap(0, R * rowBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(Z, R * rowBytes, MADV_HUGEPAGE);
    for (size_t r = 0; r < R; r++)
        for (int c = 0; c < C; c += 64) {
            uint8_t *z = Z + r * rowBytes + c / 64 * 96;
            const uint16_t *w = W + r * C + c;
            for (int j = 0; j < 64; j++) z[j] = code[w[j] >> 8] ? (w[j] & 0xFF) : 0;
            for (int j = 0; j < 32; j++) z[64 + j] = code[w[j] >> 8] | code[w[j + 32] >> 8] << 4;
        }
    X = aligned_alloc(64, C * 4), XP = aligned_alloc(64, C * 4), XB = aligned_alloc(64, C * 2), XBP = aligned_alloc(64, C * 2);
    OUT = aligned_alloc(64, R * 4), OUT2 = aligned_alloc(64, R * 4);
    for (int i = 0; i < C; i++) {
        X[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        uint32_t b;
        memcpy(&b, &X[i], 4);
        XB[i] = (b + 0x7FFF + ((b >> 16) & 1)) >> 16;
    }
    for (int c = 0; c < C; c += 64)
        for (int l = 0; l < 4; l++)
            for (int d = 0; d < 4; d++) {
                XP[c + l * 4 + d] = X[c + l * 16 + 2 * d], XP[c + 16 + l * 4 + d] = X[c + l * 16 + 2 * d + 1];
                XP[c + 32 + l * 4 + d] = X[c + l * 16 + 8 + 2 * d], XP[c + 48 + l * 4 + d] = X[c + l * 16 + 9 + 2 * d];
            }
    for (int c = 0; c < C; c += 64)
        for (int l = 0; l < 4; l++)
            for (int j = 0; j < 8; j++) XBP[c + 8 * l + j] = XB[c + 16 * l + j], XBP[c + 32 + 8 * l + j] = XB[c + 16 * l + 8 + j];
    f32act(0, R), packed(0, R);
    double diff = 0;
    for (size_t r = 0; r < R; r++) diff = fmax(diff, fabs(OUT[r] - OUT2[r]));
    printf("%zu × %d bf16, %d threads; exceptions %.2e of the weights; max |packed − f32-act| %.2g\n", R, C, threads,
           (double)exceptions / (R * C), diff);
    dpbf16(0, R);
    memcpy(OUT, OUT2, R * 4);
    packeddp(0, R);
    double diffdp = 0;
    for (size_t r = 0; r < R; r++) diffdp = fmax(diffdp, fabs(OUT[r] - OUT2[r]));
    printf("max |packed-dp − vdpbf16ps| %.2g\n", diffdp);
    const char *names[] = {"f32-act", "vdpbf16ps", "packed", "packed×4", "packed-dp", "packed-dp×4"};
    Kernel kernels[] = {f32act, dpbf16, packed, packed4, packeddp, packeddp4};
    enum { K = sizeof kernels / sizeof *kernels };
    double rates[K][64];
    for (int rep = 0; rep < reps; rep++)
        for (int k = 0; k < K; k++) rates[k][rep] = R * C / pass(kernels[k], threads) / 1e9;
    for (int k = 0; k < K; k++) {
        qsort(rates[k], reps, sizeof(double), compare);
        printf("%-10s %6.2f Gweights/s (quartiles %.2f–%.2f)\n", names[k], rates[k][reps / 2], rates[k][reps / 4], rates[k][3 * reps / 4]);
    }
    return 0;
}
