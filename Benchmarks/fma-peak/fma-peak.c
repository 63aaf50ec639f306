// The f32 FMA peak of this machine's cores: 24 independent chains of 512-bit (AVX-512) or 256-bit (AVX2)
// fused multiply-adds per thread, no memory traffic. It bounds what an exact f32 GEMM can reach; on AMD Zen 4
// it shows why exact prefill of internlm2-1_8b cannot match llama.cpp's bf16 (`vdpbf16ps`) prefill
// (BENCHMARKS.md, CPU inference, 2026-12-07).
//   clang -O2 -march=native -pthread Benchmarks/fma-peak/fma-peak.c -o /tmp/fma-peak && /tmp/fma-peak 2
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define WIDTH 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define STORE _mm512_storeu_ps
#else
typedef __m256 vec;
#define WIDTH 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define STORE _mm256_storeu_ps
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double results[64];

static void *run(void *arg) {
    int id = (int)(long)arg;
    vec a[24];
    for (int i = 0; i < 24; i++) a[i] = SET1(i * 1e-3f);
    vec b = SET1(0.999f), c = SET1(1e-4f);
    long steps = 50000000;
    double start = now();
    for (long i = 0; i < steps; i++) {
#define F(k) a[k] = FMA(a[k], b, c);
        F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)
        F(12) F(13) F(14) F(15) F(16) F(17) F(18) F(19) F(20) F(21) F(22) F(23)
    }
    double seconds = now() - start;
    float sink[WIDTH], total = 0;
    for (int i = 0; i < 24; i++) {
        STORE(sink, a[i]);
        total += sink[0];
    }
    results[id] = steps * 24.0 * WIDTH * 2 / seconds / 1e9;
    if (total == 12345.0f) printf("%f\n", total);  // keeps the chains alive
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) threads = 1;
    pthread_t workers[64];
    for (int i = 0; i < threads; i++) pthread_create(&workers[i], NULL, run, (void *)(long)i);
    double sum = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(workers[i], NULL);
        printf("thread %d: %.1f GFLOP/s\n", i, results[i]);
        sum += results[i];
    }
    printf("%d-bit FMA, %d thread(s): %.1f GFLOP/s in all\n", WIDTH * 32, threads, sum);
    return 0;
}
