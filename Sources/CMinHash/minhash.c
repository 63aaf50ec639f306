// See CMinHash.h. Strategy: the permutation loop (m = num_perm, 128 by default) is the inner loop, so that
// each shingle hash is broadcast once and the loop over the (a, b, sig) arrays vectorises: 4 lanes of 64-bit
// products (vpmuludq on the high and low halves of a), a shift, and vpminud on the 32-bit results.
#include "CMinHash.h"

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

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
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

void intern_minhash_update(uint32_t *sig, const uint64_t *a, const uint64_t *b, int m, const uint64_t *xs, int n) {
    update_portable(sig, a, b, m, xs, n);
}
#endif
