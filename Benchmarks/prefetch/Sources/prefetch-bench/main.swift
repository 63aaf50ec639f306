// Streams a 92544 × 1024 bf16 matrix (InternLM2's output projection at hidden 1024, 190 MB) through
// one-token dot products on one core, in the access patterns of InternKit's decode kernels, with and without
// software prefetch, and prints GB/s for each. The dot products are plain Swift SIMD; only the prefetch is C.
import CPrefetch
import Foundation

#if arch(x86_64)
    import _Builtin_intrinsics.intel
#endif

let cols = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1024 : 1024
let rows = 92544 * 1024 / cols
let rowBytes = cols * 2
let weights = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 4096)
let bits = weights.bindMemory(to: UInt16.self, capacity: rows * cols)
for i in 0..<(rows * cols) { bits[i] = UInt16(truncatingIfNeeded: (i &* 2_654_435_761) >> 16) & 0x3fff | 0x3c00 }
let x = UnsafeMutablePointer<Float>.allocate(capacity: cols)
for i in 0..<cols { x[i] = Float(i % 7) * 0.1 }
let out = UnsafeMutablePointer<Float>.allocate(capacity: rows)

/// bf16 → f32 by widening and shifting (as InternKernels' BF16Loader).
@inline(__always) func load8(_ base: UnsafeRawPointer, _ column: Int) -> SIMD8<Float> {
    #if arch(x86_64)
        let h = base.loadUnaligned(fromByteOffset: column &* 2, as: __m128i.self)
        return unsafeBitCast(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16), to: SIMD8<Float>.self)
    #else
        let h = base.loadUnaligned(fromByteOffset: column &* 2, as: SIMD8<UInt16>.self)
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    #endif
}
@inline(__always) func activations(_ column: Int) -> SIMD8<Float> {
    UnsafeRawPointer(x).loadUnaligned(fromByteOffset: column &* 4, as: SIMD8<Float>.self)
}

/// What the four-row tile prefetches.
enum TilePrefetch {
    case none
    /// The next tile's 4 rows, one line per 64 bytes consumed (InternKit's f32/bf16/f16 decode tile).
    case nextTile
    /// Each row `bytes` ahead of its reads, one line per 64 bytes of each row (an alternative for long rows).
    case ahead(Int)
}

/// Four rows at a time, one accumulator each (InternKit's f32/bf16/f16 decode tile).
func fourRows(prefetch: TilePrefetch) {
    var r = 0
    while r &+ 4 <= rows {
        let w0 = UnsafeRawPointer(weights) + r &* rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes
        let next = w0 + 4 &* rowBytes
        var a0 = SIMD8<Float>(), a1 = a0, a2 = a0, a3 = a0
        var c = 0
        while c < cols {
            switch prefetch {
            case .none: break
            case .nextTile: intern_prefetch(next + 8 &* c)
            case .ahead(let bytes):
                if c & 31 == 0 {
                    let o = 2 &* c &+ bytes
                    intern_prefetch(w0 + o)
                    intern_prefetch(w1 + o)
                    intern_prefetch(w2 + o)
                    intern_prefetch(w3 + o)
                }
            }
            let xv = activations(c)
            a0 = a0.addingProduct(load8(w0, c), xv)
            a1 = a1.addingProduct(load8(w1, c), xv)
            a2 = a2.addingProduct(load8(w2, c), xv)
            a3 = a3.addingProduct(load8(w3, c), xv)
            c &+= 8
        }
        (out[r], out[r &+ 1], out[r &+ 2], out[r &+ 3]) = (a0.sum(), a1.sum(), a2.sum(), a3.sum())
        r &+= 4
    }
}

/// One row at a time, four accumulators (llama.cpp's pattern; InternKit's quantized decode walks rows the same
/// way); with `prefetch`, 1 KiB ahead.
func oneRow(prefetch: Bool) {
    for r in 0..<rows {
        let w = UnsafeRawPointer(weights) + r &* rowBytes
        var a0 = SIMD8<Float>(), a1 = a0, a2 = a0, a3 = a0
        var c = 0
        while c < cols {
            if prefetch {
                intern_prefetch(w + (2 &* c &+ 1024))
                intern_prefetch(w + (2 &* c &+ 1088))
            }
            a0 = a0.addingProduct(load8(w, c), activations(c))
            a1 = a1.addingProduct(load8(w, c &+ 8), activations(c &+ 8))
            a2 = a2.addingProduct(load8(w, c &+ 16), activations(c &+ 16))
            a3 = a3.addingProduct(load8(w, c &+ 24), activations(c &+ 24))
            c &+= 32
        }
        out[r] = (a0 + a1 + a2 + a3).sum()
    }
}

func measure(_ name: String, _ body: () -> Void) {
    body()
    var best = Double.infinity
    for _ in 0..<5 {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    print("\(name): \(String(format: "%.2f", Double(rows * rowBytes) / best / 1e9)) GB/s")
}

print("\(rows) × \(cols) bf16, one thread")
measure("4 rows, no prefetch     ") { fourRows(prefetch: .none) }
measure("4 rows, prefetch        ") { fourRows(prefetch: .nextTile) }
for ahead in [1024, 2048, 4096] { measure("4 rows, \(ahead) B ahead   ") { fourRows(prefetch: .ahead(ahead)) } }
measure("1 row, no prefetch      ") { oneRow(prefetch: false) }
measure("1 row, prefetch         ") { oneRow(prefetch: true) }
