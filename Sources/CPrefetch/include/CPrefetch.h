// Software prefetch for the decode kernels. C because Swift has no way to emit a prefetch: clang's
// `_mm_prefetch` is a macro and `_m_prefetch` a builtin, and Swift imports neither (calls to the latter are
// silently dropped). Measured by Benchmarks/prefetch (bf16 rows of 2 KiB, 4 rows at a time, one core of an
// AMD EPYC Zen 1: 6.4–6.6 GB/s without, 11.0–11.5 GB/s with): the hardware prefetchers lose track of streams
// that jump every row, which short rows (hidden size 1024) do every 2 KiB.
#ifndef CPREFETCH_H
#define CPREFETCH_H

/// Hints that the cache line holding `address` will be read soon (into all cache levels). Never faults, so
/// an address past the end of the weights is harmless.
static inline __attribute__((always_inline)) void intern_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}
#endif
