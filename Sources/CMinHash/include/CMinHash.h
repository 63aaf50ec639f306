// MinHash signature update, the hot loop of `intern data dedup`. C so that the x86-64 build can carry an AVX2
// version chosen at run time (Swift compiles for the x86-64 baseline, SSE2, which has no unsigned 32-bit min
// and no 64-bit multiply); other CPUs get the portable loop, which the compiler vectorises for their SIMD.
#ifndef CMINHASH_H
#define CMINHASH_H
#include <stdint.h>

/// For every shingle hash x in xs[0..<n]: sig[k] = min(sig[k], (uint32_t)((a[k] * x32 + b[k]) >> 32)) for
/// k < m, where x32 = (uint32_t)(x ^ (x >> 32)) and products wrap modulo 2^64.
void intern_minhash_update(uint32_t *sig, const uint64_t *a, const uint64_t *b, int m, const uint64_t *xs, int n);

/// datasketch's "affine32" scheme: for every 32-bit hash x in xs[0..<n] (already mixed by the MurmurHash3
/// finaliser): sig[k] = min(sig[k], a[k] * x + b[k] mod 2^32).
void intern_minhash_update32(uint32_t *sig, const uint32_t *a, const uint32_t *b, int m, const uint32_t *xs, int n);

/// The first 4 bytes of the SHA-1 digest of data[0..<len], little-endian (datasketch's sha1_hash32).
uint32_t intern_sha1_hash32(const uint8_t *data, long len);

/// datasketch's shingle hashes in one call, over the document's tokens written one after another, each followed
/// by one space: token k starts at joined[starts[k]], and starts[tokens] is the end of the last one's space.
/// Shingle s (0 <= s <= tokens - g) is then the contiguous bytes from starts[s] to starts[s + g] - 1 (g tokens
/// joined by single spaces); out[s] = fmix32(sha1_hash32(shingle)). joined must be readable for 64 bytes past
/// starts[tokens]. Short shingles are hashed two at a time (two SHA-1 chains interleaved).
void intern_datasketch_shingle_hashes(const uint8_t *joined, const int32_t *starts, int tokens, int g, uint32_t *out);

/// 1 when the AVX2 path is used.
int intern_minhash_uses_avx2(void);
#endif
