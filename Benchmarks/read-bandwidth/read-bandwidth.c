// The machine's read bandwidth as a decode step sees it: N threads stream disjoint parts of one 1 GiB
// buffer (32× a 32 MiB L3) at the same time, each summing 64-bit words; a pass is timed from the moment
// all threads start until the last one ends, best of 7 passes. `Benchmarks/compare-llamacpp.sh` divides
// the bytes of weights a decode token reads by this figure for the "% of limit" columns.
// The buffer asks for transparent huge pages, as InternKit's weight copies do (Sources/InternKernels/
// PageBuffer.swift): on a KVM guest 4 KiB pages read ~7% slower (TLB misses walk two page tables), and the
// limit should be the machine's best.
// Why not numpy: summing one array per process and adding the processes' best passes counts passes that
// did not overlap in time, so it reported 55 GB/s on 2 Zen 4 cores whose concurrent reads reach 33.
//   cc -O2 -march=native -pthread Benchmarks/read-bandwidth/read-bandwidth.c -o /tmp/read-bandwidth
//   /tmp/read-bandwidth 2          # prints GB/s (10^9 bytes per second)
//   /tmp/read-bandwidth 2 4k       # the same with 4 KiB pages (no MADV_HUGEPAGE), for comparison
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include <time.h>

#define BYTES ((size_t)1 << 30)
#define PASSES 7

static uint64_t *buffer;
static int threads;
static pthread_barrier_t start, end;
static volatile uint64_t sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *stream(void *arg) {
    size_t words = BYTES / 8 / threads, first = (size_t)(long)arg * words;
    for (int pass = 0; pass < PASSES; pass++) {
        pthread_barrier_wait(&start);
        // A plain reduction: compilers vectorize and unroll it into several independent vector sums.
        uint64_t sum = 0;
        for (size_t i = first; i < first + words; i++) sum += buffer[i];
        sink += sum;
        pthread_barrier_wait(&end);
    }
    return NULL;
}

int main(int argc, char **argv) {
    threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "usage: %s THREADS (1-256) [4k]\n", argv[0]);
        return 2;
    }
    buffer = aligned_alloc((size_t)2 << 20, BYTES);
    if (!buffer) {
        fprintf(stderr, "cannot allocate %zu bytes\n", BYTES);
        return 1;
    }
#ifdef __linux__
    if (argc < 3 || strcmp(argv[2], "4k") != 0) madvise(buffer, BYTES, MADV_HUGEPAGE);
#endif
    // Every word different (a hypervisor could merge identical pages, and reads of one page hit the cache).
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < BYTES / 8; i++) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        buffer[i] = state;
    }
    pthread_barrier_init(&start, NULL, threads + 1);
    pthread_barrier_init(&end, NULL, threads + 1);
    pthread_t ids[256];
    for (long i = 0; i < threads; i++) pthread_create(&ids[i], NULL, stream, (void *)i);
    double best = 0;
    for (int pass = 0; pass < PASSES; pass++) {
        pthread_barrier_wait(&start);
        double t0 = now();
        pthread_barrier_wait(&end);
        double rate = (double)(BYTES / 8 / threads * 8 * threads) / (now() - t0) / 1e9;
        if (rate > best) best = rate;
    }
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    printf("%.2f\n", best);
    return 0;
}
