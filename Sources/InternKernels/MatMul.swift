// Matrix products against weights stored as f32, f16 or bf16: out[t, r] = sum_c W[r, c] * x[t, c], the
// PyTorch `nn.Linear` layout (W is (rows, cols) = (out_features, in_features), row-major).
// Strategy: threaded over output rows (static, even split through ThreadPool; every row is independent,
// so no reduction between threads). Per row, the weights are converted to f32 in SIMD8<Float> lanes
// (AVX2 width) and multiplied into up to 4 tokens at once, so each weight load serves 4 dot products
// during prefill; decode (T = 1) is a plain dot product per row and is bound by weight bandwidth.
// Products are a separate multiply and add, not `addingProduct`: without an FMA target feature that
// becomes a libm `fmaf` call per lane. Accumulation is f32 in two SIMD8 accumulators per token for instruction-level parallelism; the
// column tail (< 8) is scalar. No cache blocking yet: that and wider vectors are issue 4's work.
// Batch invariance: every output element out[t, r] is reduced in one fixed order that depends only on C,
// never on T, on which group of 4 tokens a row falls in, or on the thread split: even 8-column blocks
// into accumulator a, odd ones into b, then (a + b).sum(), then the scalar tail in column order. The
// 4-token path and the 1-token path spell out that same order, so a token's logits are bitwise the same
// alone or in a batch of any size (the server's continuous batching relies on it; tested in
// KernelTests `matMulIsBatchInvariant` and InternLM2Tests `batchedDecodeMatchesSingleSequence`).
// Names: T = tokens, R = rows (output features), C = cols (input features).

/// How a weight matrix's elements are stored.
public enum WeightType: String, Sendable, CaseIterable {
    case f32, f16, bf16

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        }
    }
}

// MARK: - Element loaders

/// Loads weight elements as f32; one conforming type per storage format, so the loops specialize.
@usableFromInline
protocol WeightLoader {
    static var stride: Int { get }
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float>
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float
}

@usableFromInline
enum F32Loader: WeightLoader {
    @usableFromInline static var stride: Int { 4 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD8<Float>.self)
    }
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        base.loadUnaligned(fromByteOffset: index &* 4, as: Float.self)
    }
}

@usableFromInline
enum BF16Loader: WeightLoader {
    @usableFromInline static var stride: Int { 2 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        // bf16 is the top half of an f32: widen and shift into place. Lane by lane, because the generic
        // `SIMD8<UInt32>(truncatingIfNeeded:)` is not specialized and costs a call per vector.
        return unsafeBitCast(
            widen(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self)) &<< 16,
            to: SIMD8<Float>.self)
    }
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)) << 16)
    }
}

@usableFromInline
enum F16Loader: WeightLoader {
    @usableFromInline static var stride: Int { 2 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        // Integer-only f16 → f32 (no F16C needed): move exponent and mantissa into place and rescale by
        // 2^112 (which also handles subnormals); infinities and NaNs get the all-ones exponent back.
        let h = widen(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD8<UInt16>.self))
        let magnitude = (h & 0x7FFF) &<< 13
        var value = unsafeBitCast(magnitude, to: SIMD8<Float>.self) * Float(bitPattern: 0x7780_0000)
        let special = magnitude .>= SIMD8<UInt32>(repeating: 0x0F80_0000)
        value.replace(with: unsafeBitCast(magnitude | 0x7F80_0000, to: SIMD8<Float>.self), where: special)
        return unsafeBitCast(unsafeBitCast(value, to: SIMD8<UInt32>.self) | ((h & 0x8000) &<< 16), to: SIMD8<Float>.self)
    }
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)))
    }
}

@inline(__always) @usableFromInline
func widen(_ v: SIMD8<UInt16>) -> SIMD8<UInt32> {
    SIMD8<UInt32>(
        UInt32(v[0]), UInt32(v[1]), UInt32(v[2]), UInt32(v[3]),
        UInt32(v[4]), UInt32(v[5]), UInt32(v[6]), UInt32(v[7]))
}

/// Element `index` of a weight buffer as f32 (slow path for gathers and references).
public func weightElement(_ base: UnsafeRawPointer, type: WeightType, index: Int) -> Float {
    switch type {
    case .f32: F32Loader.load1(base, index)
    case .f16: F16Loader.load1(base, index)
    case .bf16: BF16Loader.load1(base, index)
    }
}

/// Converts `count` elements starting at element `offset` of a weight buffer to f32 (an embedding row).
public func convertToFloat(
    _ out: UnsafeMutablePointer<Float>,  // (count)
    from base: UnsafeRawPointer, type: WeightType, offset: Int, count: Int
) {
    switch type {
    case .f32: convertRow(F32Loader.self, out, base, offset, count)
    case .f16: convertRow(F16Loader.self, out, base, offset, count)
    case .bf16: convertRow(BF16Loader.self, out, base, offset, count)
    }
}

private func convertRow<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ base: UnsafeRawPointer, _ offset: Int, _ count: Int
) {
    var c = 0
    while c + 8 <= count {
        UnsafeMutableRawPointer(out + c).storeBytes(of: L.load8(base, offset + c), as: SIMD8<Float>.self)
        c += 8
    }
    while c < count {
        out[c] = L.load1(base, offset + c)
        c += 1
    }
}

// MARK: - Optimized

/// out (T, R) = x (T, C) · Wᵀ, with W (R, C) stored as `type`; threaded over rows when `pool` is given.
public func matMul(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols) of `type`
    type: WeightType,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    let body = { (range: Range<Int>, _: Int) in
        switch type {
        case .f32: matMulRows(F32Loader.self, out, weight, input, tokens, rows, cols, range)
        case .f16: matMulRows(F16Loader.self, out, weight, input, tokens, rows, cols, range)
        case .bf16: matMulRows(BF16Loader.self, out, weight, input, tokens, rows, cols, range)
        }
    }
    if let pool {
        pool.parallelFor(rows, granularity: 4, body)
    } else {
        body(0..<rows, 0)
    }
}

private func matMulRows<L: WeightLoader>(
    _: L.Type, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: UnsafePointer<Float>,
    _ T: Int, _ R: Int, _ C: Int, _ rows: Range<Int>
) {
    let C8 = C & ~7
    for r in rows {
        let w = weight + r &* C &* L.stride
        var t = 0
        while t + 4 <= T {
            let x0 = x + t &* C, x1 = x0 + C, x2 = x1 + C, x3 = x2 + C
            // Even blocks into a*, odd blocks into b*: the same order as the 1-token loop below.
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
            var c = 0
            while c + 16 <= C {
                let wv = L.load8(w, c), wu = L.load8(w, c &+ 8)
                a0 = a0 + wv * load8(x0, c)
                a1 = a1 + wv * load8(x1, c)
                a2 = a2 + wv * load8(x2, c)
                a3 = a3 + wv * load8(x3, c)
                b0 = b0 + wu * load8(x0, c &+ 8)
                b1 = b1 + wu * load8(x1, c &+ 8)
                b2 = b2 + wu * load8(x2, c &+ 8)
                b3 = b3 + wu * load8(x3, c &+ 8)
                c &+= 16
            }
            if c < C8 {
                let wv = L.load8(w, c)
                a0 = a0 + wv * load8(x0, c)
                a1 = a1 + wv * load8(x1, c)
                a2 = a2 + wv * load8(x2, c)
                a3 = a3 + wv * load8(x3, c)
                c &+= 8
            }
            var s0 = (a0 + b0).sum(), s1 = (a1 + b1).sum(), s2 = (a2 + b2).sum(), s3 = (a3 + b3).sum()
            while c < C {
                let wv = L.load1(w, c)
                s0 += wv * x0[c]
                s1 += wv * x1[c]
                s2 += wv * x2[c]
                s3 += wv * x3[c]
                c &+= 1
            }
            out[t &* R &+ r] = s0
            out[(t &+ 1) &* R &+ r] = s1
            out[(t &+ 2) &* R &+ r] = s2
            out[(t &+ 3) &* R &+ r] = s3
            t &+= 4
        }
        while t < T {
            let x0 = x + t &* C
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
            var c = 0
            while c + 16 <= C {
                a0 = a0 + L.load8(w, c) * load8(x0, c)
                a1 = a1 + L.load8(w, c &+ 8) * load8(x0, c &+ 8)
                c &+= 16
            }
            if c < C8 {
                a0 = a0 + L.load8(w, c) * load8(x0, c)
                c &+= 8
            }
            var s = (a0 + a1).sum()
            while c < C {
                s += L.load1(w, c) * x0[c]
                c &+= 1
            }
            out[t &* R &+ r] = s
            t &+= 1
        }
    }
}

@inline(__always)
func load8(_ p: UnsafePointer<Float>, _ index: Int) -> SIMD8<Float> {
    UnsafeRawPointer(p + index).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func store8(_ p: UnsafeMutablePointer<Float>, _ index: Int, _ value: SIMD8<Float>) {
    UnsafeMutableRawPointer(p + index).storeBytes(of: value, as: SIMD8<Float>.self)
}

// MARK: - Naive twin

/// The reference for `matMul`: one scalar dot product per output, accumulated in Double.
public func matMulReference(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols) of `type`
    type: WeightType,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int
) {
    for t in 0..<tokens {
        for r in 0..<rows {
            var sum = 0.0
            for c in 0..<cols {
                sum += Double(weightElement(weight, type: type, index: r * cols + c)) * Double(input[t * cols + c])
            }
            out[t * rows + r] = Float(sum)
        }
    }
}
