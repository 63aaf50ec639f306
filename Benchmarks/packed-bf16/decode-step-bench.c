// One decode step of internlm2-1_8b's matrices (24 layers of wqkv 4096×2048, wo 2048×2048, w1 and w3 8192×2048,
// w2 2048×8192, then the output 92544×2048), each in its own huge-page buffer, as InternKit runs it: every
// matrix split into 8 chunks of rows handed out from an atomic counter to THREADS threads, a barrier between
// matrices. Why bf16 decode rounds the activations by default (Sources/InternKernels/PackedBFloat16.swift):
//   packed-f32  the 12-bit layout widened to f32, exact f32 activations (InternKit's `--activations f32`)
//   packed-dp   the 12-bit layout as bf16 words, bf16 activations, `vdpbf16ps` (InternKit's default)
//   plain-dp    bf16 rows, bf16 activations, `vdpbf16ps` (llama.cpp's ggml_vec_dot_bf16)
//   packed-dp4  packed-dp on tiles of 4 rows sharing each activation load
//   plain-dp4   plain-dp on tiles of 4 rows (llama.cpp's tinyBLAS shape for one token)
// Every step runs every variant, one after the other (the VM's bandwidth drifts within minutes). Weights are
// random bytes (the arithmetic does not depend on the values), so nothing is checked here (the kernels' results
// are checked by the tests and by packed-bf16-bench.c); a checksum of the outputs keeps the work observable.
//   clang -O2 -march=native -pthread Benchmarks/packed-bf16/decode-step-bench.c -o /tmp/decode-step-bench
//   /tmp/decode-step-bench STEPS [THREADS]        e.g. 4 2
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#if !defined(__AVX512BW__) || !defined(__AVX512BF16__)
#error "needs AVX-512 BW and AVX512-BF16 (-march=native on such a CPU)"
#endif

enum { MAX_MATRICES = 128, CHUNKS = 8, VARIANTS = 5 };
typedef struct { uint8_t *packed; uint16_t *plain; int rows, cols; } Matrix;
static Matrix matrices[MAX_MATRICES];
static int matrixCount, threads = 2, variant;
static uint8_t TABLE[16];
static float X[8192], OUT[92544];
static uint16_t XB[8192];
static atomic_int nextChunk[MAX_MATRICES], arrived;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static void *hugeBuffer(size_t bytes) {
    void *p = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}
// A chunk of 64 packed weights as two vectors of bf16 words (lane l: weights 16l+0…7, then 16l+8…15).
static inline void decodeWords(const uint8_t *z, __m512i table, __m512i *lo, __m512i *hi) {
    const __m256i n = _mm256_loadu_si256((const void *)(z + 64));
    const __m512i codes = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(n), _mm256_srli_epi16(n, 4), 1), _mm512_set1_epi8(15));
    const __m512i top = _mm512_shuffle_epi8(table, codes), low = _mm512_loadu_si512(z);
    *lo = _mm512_unpacklo_epi8(low, top), *hi = _mm512_unpackhi_epi8(low, top);
}
static void rows(const Matrix *m, int r0, int r1) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)TABLE));
    const __m512i odd = _mm512_set1_epi32((int)0xFFFF0000);
    const int C = m->cols;
    const size_t rowBytes = (size_t)C / 64 * 96;
    __m512i lo, hi;
    if (variant >= 3) {
        for (int r = r0; r + 4 <= r1; r += 4) {
            __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            if (variant == 4) {
                const uint16_t *w = m->plain + (size_t)r * C;
                for (int c = 0; c < C; c += 32) {
                    const __m512i x = _mm512_loadu_si512(XB + c);
                    for (int i = 0; i < 4; i++) a[i] = _mm512_dpbf16_ps(a[i], (__m512bh)_mm512_loadu_si512(w + (size_t)i * C + c), (__m512bh)x);
                }
            } else {
                const uint8_t *z = m->packed + (size_t)r * rowBytes;
                for (int c = 0; c < C; c += 64, z += 96) {
                    const __m512i x0 = _mm512_loadu_si512(XB + c), x1 = _mm512_loadu_si512(XB + c + 32);
                    for (int i = 0; i < 4; i++) {
                        decodeWords(z + i * rowBytes, table, &lo, &hi);
                        a[i] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(a[i], (__m512bh)lo, (__m512bh)x0), (__m512bh)hi, (__m512bh)x1);
                    }
                }
            }
            for (int i = 0; i < 4; i++) OUT[r + i] = _mm512_reduce_add_ps(a[i]);
        }
        return;
    }
    for (int r = r0; r < r1; r++) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        if (variant == 2) {
            const uint16_t *w = m->plain + (size_t)r * C;
            for (int c = 0; c < C; c += 64) {
                a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(w + c), (__m512bh)_mm512_loadu_si512(XB + c));
                a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(w + c + 32), (__m512bh)_mm512_loadu_si512(XB + c + 32));
            }
        } else {
            const uint8_t *z = m->packed + (size_t)r * rowBytes;
            for (int c = 0; c < C; c += 64, z += 96) {
                decodeWords(z, table, &lo, &hi);
                if (variant == 1) {
                    a0 = _mm512_dpbf16_ps(a0, (__m512bh)lo, (__m512bh)_mm512_loadu_si512(XB + c));
                    a1 = _mm512_dpbf16_ps(a1, (__m512bh)hi, (__m512bh)_mm512_loadu_si512(XB + c + 32));
                } else {
                    a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(lo, 16)), _mm512_loadu_ps(X + c), a0);
                    a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(lo, odd)), _mm512_loadu_ps(X + c + 16), a1);
                    a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(hi, 16)), _mm512_loadu_ps(X + c + 32), a2);
                    a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(hi, odd)), _mm512_loadu_ps(X + c + 48), a3);
                }
            }
        }
        OUT[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}
// One step: every matrix in order, chunks from its counter, then a spinning (yielding) barrier.
static void step(void) {
    for (int i = 0; i < matrixCount; i++) {
        const Matrix *m = &matrices[i];
        for (int c; (c = atomic_fetch_add(&nextChunk[i], 1)) < CHUNKS;) {
            // Whole tiles of 4 rows per chunk.
            const int r0 = m->rows / 4 * c / CHUNKS * 4, r1 = m->rows / 4 * (c + 1) / CHUNKS * 4;
            rows(m, r0, r1);
        }
        atomic_fetch_add(&arrived, 1);
        while (atomic_load(&arrived) < (i + 1) * threads) sched_yield();
    }
}
static void *worker(void *unused) {
    (void)unused;
    step();
    return 0;
}

int main(int argc, char **argv) {
    const int steps = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2) threads = atoi(argv[2]);
    if (steps < 1 || threads < 1 || threads > 16) { fprintf(stderr, "usage: %s STEPS [THREADS]\n", argv[0]); return 2; }
    const int shapes[5][2] = {{4096, 2048}, {2048, 2048}, {8192, 2048}, {8192, 2048}, {2048, 8192}};
    for (int layer = 0; layer < 24; layer++)
        for (int s = 0; s < 5; s++) matrices[matrixCount++] = (Matrix){0, 0, shapes[s][0], shapes[s][1]};
    matrices[matrixCount++] = (Matrix){0, 0, 92544, 2048};
    srand(1);
    for (int k = 0; k < 16; k++) TABLE[k] = (uint8_t)(0x38 + k);
    double weights = 0;
    for (int i = 0; i < matrixCount; i++) {
        const size_t n = (size_t)matrices[i].rows * matrices[i].cols;
        matrices[i].packed = hugeBuffer(n * 3 / 2), matrices[i].plain = hugeBuffer(n * 2);
        for (size_t j = 0; j < n * 3 / 2; j++) matrices[i].packed[j] = (uint8_t)rand();
        for (size_t j = 0; j < n; j++) matrices[i].plain[j] = (uint16_t)(0x3C00 | (rand() & 0xFF));
        weights += (double)n;
    }
    for (int c = 0; c < 8192; c++) X[c] = 0.01f, XB[c] = 0x3C23;
    const char *names[VARIANTS] = {"packed-f32", "packed-dp", "plain-dp", "packed-dp4", "plain-dp4"};
    const double bytesPerWeight[VARIANTS] = {1.5, 1.5, 2, 1.5, 2};
    printf("%.2f G weights a step, %d threads\n", weights / 1e9, threads);
    for (int s = 0; s < steps; s++)
        for (variant = 0; variant < VARIANTS; variant++) {
            for (int i = 0; i < matrixCount; i++) atomic_store(&nextChunk[i], 0);
            atomic_store(&arrived, 0);
            pthread_t others[16];
            const double start = now();
            for (int t = 1; t < threads; t++) pthread_create(&others[t], 0, worker, 0);
            step();
            for (int t = 1; t < threads; t++) pthread_join(others[t], 0);
            const double seconds = now() - start;
            double checksum = 0;
            for (int r = 0; r < 92544; r += 97) checksum += OUT[r];
            printf("step %d %-10s %6.2f steps/s %6.2f Gweights/s %6.2f GB/s (checksum %.3g)\n", s, names[variant], 1 / seconds,
                   weights / seconds / 1e9, weights * bytesPerWeight[variant] / seconds / 1e9, checksum);
        }
    return 0;
}
