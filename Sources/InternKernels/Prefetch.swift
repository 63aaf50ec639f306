// Software prefetch in the decode kernels, which stream each weight once per token. The hardware prefetchers
// follow a steady stream but lose it where the reads jump (every row of a 4-row tile, every 1–2 KiB for
// InternLM2's small shapes) and ramp up slowly after each jump; `Benchmarks/prefetch` measures the difference
// (one core of an AMD EPYC Zen 1, 2 KiB rows: 6.4 → 11.0–11.5 GB/s 4 rows at a time, 8.6 → 10.7 GB/s one
// row at a time).
import CPrefetch

/// How far ahead of the bytes being read a single-stream kernel prefetches: a few memory latencies' worth of
/// reading at one core's bandwidth (~100 ns × 10–25 GB/s). 4 KiB: on AMD Zen 4 1.8B Q4_0 decode ran at a
/// median 26.7 t/s against 25.6 with 1 KiB (5 alternating runs each; 8 KiB 25.1); on Zen 1 1, 2 and 4 KiB
/// measured alike.
let prefetchDistance = 4096

/// The longest rows (bytes) for which the f32/bf16/f16 decode tiles prefetch the next tile: beyond it the next
/// tile is too far ahead (4 rows of 16 KiB for internlm2-1_8b's w2) and the prefetches slowed one Zen 4 core
/// from 16–19 to 12–14.5 GB/s (`prefetch-bench 8192`); at 2–4 KiB rows they help (10.5–11.2 → 22.9–25.6 GB/s
/// at 1024).
let tilePrefetchMaxRowBytes = 8192

/// Prefetches the cache lines of `base[0..<bytes]`: one prefetch per 64 bytes (`bytes` is a constant at every
/// call site, so the loop unrolls).
@inline(__always)
func prefetch(_ base: UnsafeRawPointer, bytes: Int) {
    var offset = 0
    while offset < bytes {
        intern_prefetch(base + offset)
        offset &+= 64
    }
}
