// Matrix products against GGUF block-quantized weights, read as stored (no de-quantized copy of the
// model): out[t, r] = sum_c W[r, c] * x[t, c] with W's rows made of ggml blocks. Block layouts follow
// ggml-common.h / ggml-quants.c `dequantize_row_*` (checked against gguf-py's `dequantize` in tests):
//   Q8_0  32 weights: f16 d, int8 q[32]                       w = d·q
//   Q4_0  32 weights: f16 d, u8 q[16] (low nibbles first)     w = d·(q − 8)
//   Q4_1  32 weights: f16 d, f16 m, u8 q[16]                  w = d·q + m
//   Q4_K 256 weights: f16 d, f16 dmin, u8 scales[12] (6-bit scale/min per 32), u8 q[128]
//   Q6_K 256 weights: u8 ql[128], u8 qh[64], i8 scales[16], f16 d
// Strategy: Q8_0, Q4_0 and Q4_1 (the 32-weight blocks) are `WeightLoader`s: they de-quantize 8 weights at
// a time straight into a SIMD8<Float> register (scale from the block header), so they run `matMul`'s
// tiled loops (4 rows × 2 tokens in registers, 4 independent FMA chains for decode) with no buffer in
// between, and inherit its fixed reduction order (one SIMD8 accumulator per output over ascending
// columns, then its lane sum): a token's result does not depend on how many tokens share the call.
// Q4_K and Q6_K de-quantize each 256-weight block once into a stack buffer and dot it with every token
// of the call; each output is accumulated block by block in ascending order, again independent of T.
// Activations stay f32: unlike llama.cpp, which quantizes them to 8 bits for integer dot products, the
// result is the exact product of the de-quantized weights (no activation rounding error).

/// A GGUF block quantization the kernels can read.
public enum BlockQuantization: String, Sendable, CaseIterable {
    case q8_0, q4_0, q4_1, q4_K, q6_K

    /// Weights per block.
    public var blockSize: Int {
        switch self {
        case .q8_0, .q4_0, .q4_1: 32
        case .q4_K, .q6_K: 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .q8_0: 34
        case .q4_0: 18
        case .q4_1: 20
        case .q4_K: 144
        case .q6_K: 210
        }
    }

    /// Bytes of a row of `count` weights (`count` a multiple of `blockSize`).
    public func rowBytes(_ count: Int) -> Int { count / blockSize * blockBytes }
}

@inline(__always) @usableFromInline
func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// The 6-bit scale and min of sub-block `j` (0..<8) of a Q4_K block (ggml `get_scale_min_k4`).
@inline(__always)
private func scaleMinK4(_ j: Int, _ s: UnsafeRawPointer) -> (Float, Float) {
    func b(_ i: Int) -> UInt8 { s.load(fromByteOffset: i, as: UInt8.self) }
    if j < 4 { return (Float(b(j) & 63), Float(b(j + 4) & 63)) }
    return (Float((b(j + 4) & 0xF) | ((b(j - 4) >> 6) << 4)), Float((b(j + 4) >> 4) | ((b(j) >> 6) << 4)))
}

/// De-quantizes one block at `block` into `out` (`type.blockSize` floats).
@inline(__always)
func dequantizeBlock(_ type: BlockQuantization, _ block: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
    switch type {
    case .q8_0:
        let d = half(block, 0)
        let q = block + 2
        for i in stride(from: 0, to: 32, by: 8) {
            let v = q.loadUnaligned(fromByteOffset: i, as: SIMD8<Int8>.self)
            store8(out, i, SIMD8<Float>(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]), Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7])) * d)
        }
    case .q4_0, .q4_1:
        let d = half(block, 0)
        let (m, q): (Float, UnsafeRawPointer) = type == .q4_1 ? (half(block, 2), block + 4) : (-8 * d, block + 2)
        for i in stride(from: 0, to: 16, by: 8) {
            let v = q.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt8>.self)
            let lo = v & 0xF, hi = v &>> 4
            store8(out, i, floats(lo) * d + m)
            store8(out, 16 + i, floats(hi) * d + m)
        }
    case .q4_K:
        let d = half(block, 0), dmin = half(block, 2)
        let scales = block + 4
        var q = block + 16
        var o = out
        for pair in 0..<4 {
            let (sc1, m1) = scaleMinK4(2 * pair, scales)
            let (sc2, m2) = scaleMinK4(2 * pair + 1, scales)
            let d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2
            for i in stride(from: 0, to: 32, by: 8) {
                let v = q.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt8>.self)
                store8(o, i, floats(v & 0xF) * d1 - mm1)
                store8(o, 32 + i, floats(v &>> 4) * d2 - mm2)
            }
            q += 32
            o += 64
        }
    case .q6_K:
        var ql = block, qh = block + 128, sc = block + 192
        let d = half(block, 208)
        var o = out
        for _ in 0..<2 {
            for l in 0..<32 {
                let s = l / 16
                let low = ql.load(fromByteOffset: l, as: UInt8.self), low32 = ql.load(fromByteOffset: l + 32, as: UInt8.self)
                let high = qh.load(fromByteOffset: l, as: UInt8.self)
                let q1 = Int(low & 0xF | ((high & 3) << 4)) - 32
                let q2 = Int(low32 & 0xF | (((high >> 2) & 3) << 4)) - 32
                let q3 = Int(low >> 4 | (((high >> 4) & 3) << 4)) - 32
                let q4 = Int(low32 >> 4 | (((high >> 6) & 3) << 4)) - 32
                func scale(_ i: Int) -> Float { Float(sc.load(fromByteOffset: i, as: Int8.self)) }
                o[l] = d * scale(s) * Float(q1)
                o[l + 32] = d * scale(s + 2) * Float(q2)
                o[l + 64] = d * scale(s + 4) * Float(q3)
                o[l + 96] = d * scale(s + 6) * Float(q4)
            }
            o += 128
            ql += 64
            qh += 32
            sc += 8
        }
    }
}

@inline(__always) @usableFromInline
func floats(_ v: SIMD8<UInt8>) -> SIMD8<Float> {
    SIMD8<Float>(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]), Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]))
}

/// De-quantizes `count` weights starting at weight `offset` (both multiples of the block size) of a
/// quantized buffer, e.g. one embedding row.
public func dequantize(
    _ out: UnsafeMutablePointer<Float>,  // (count)
    from base: UnsafeRawPointer, type: BlockQuantization, offset: Int, count: Int
) {
    precondition(offset % type.blockSize == 0 && count % type.blockSize == 0, "unaligned de-quantization")
    let first = offset / type.blockSize
    for b in 0..<(count / type.blockSize) {
        dequantizeBlock(type, base + (first + b) * type.blockBytes, out + b * type.blockSize)
    }
}

// MARK: - Optimized

/// out (T, R) = x (T, C) · Wᵀ with W (R, C) made of `type` blocks; threaded over rows when `pool` is given.
public func matMulQuantized(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols / blockSize blocks)
    type: BlockQuantization,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    precondition(cols % type.blockSize == 0, "cols \(cols) is not a multiple of the \(type) block size")
    let body = { (range: Range<Int>, _: Int) in
        switch type {
        case .q8_0: matMulRows(Q8_0Loader.self, out, weight, input, tokens, rows, cols, range)
        case .q4_0: matMulRows(Q4_0Loader.self, out, weight, input, tokens, rows, cols, range)
        case .q4_1: matMulRows(Q4_1Loader.self, out, weight, input, tokens, rows, cols, range)
        case .q4_K: quantizedRows(.q4_K, out, weight, input, tokens, rows, cols, range)
        case .q6_K: matMulRows(Q6_KLoader.self, out, weight, input, tokens, rows, cols, range)
        }
    }
    if let pool {
        pool.parallelFor(rows, granularity: 12, body)
    } else {
        body(0..<rows, 0)
    }
}

/// out (T, R) = x (T, C) · Wᵀ for prefill with exact f32 activations: `PrefillGEMM.swift`'s GEMM over the
/// de-quantized weights (one FMA chain per output in column order; Q4_K: `matMulQuantized`).
public func matMulQuantizedPrefill(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer,  // (rows, cols / blockSize blocks)
    type: BlockQuantization,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int,
    pool: ThreadPool?
) {
    precondition(cols % type.blockSize == 0, "cols \(cols) is not a multiple of the \(type) block size")
    switch type {
    case .q8_0: gemm(out, FloatGEMM(rows: LoaderRows(Q8_0Loader.self, weight, cols: cols)), input, tokens, rows, cols, pool)
    case .q4_0: gemm(out, FloatGEMM(rows: LoaderRows(Q4_0Loader.self, weight, cols: cols)), input, tokens, rows, cols, pool)
    case .q4_1: gemm(out, FloatGEMM(rows: LoaderRows(Q4_1Loader.self, weight, cols: cols)), input, tokens, rows, cols, pool)
    case .q6_K: gemm(out, FloatGEMM(rows: LoaderRows(Q6_KLoader.self, weight, cols: cols)), input, tokens, rows, cols, pool)
    case .q4_K:
        matMulQuantized(out, weight: weight, type: type, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
    }
}

private func quantizedRows(
    _ type: BlockQuantization, _ out: UnsafeMutablePointer<Float>, _ weight: UnsafeRawPointer, _ x: UnsafePointer<Float>,
    _ T: Int, _ R: Int, _ C: Int, _ rows: Range<Int>
) {
    let bs = type.blockSize, blocks = C / bs, rowBytes = blocks * type.blockBytes
    withUnsafeTemporaryAllocation(of: Float.self, capacity: bs) { buffer in
        let w = buffer.baseAddress!
        for r in rows {
            let row = weight + r * rowBytes
            for t in 0..<T { out[t * R + r] = 0 }
            for b in 0..<blocks {
                dequantizeBlock(type, row + b * type.blockBytes, w)
                for t in 0..<T {
                    let xb = x + t * C + b * bs
                    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
                    var c = 0
                    while c < bs {
                        a0 = madd(a0, load8(w, c), load8(xb, c))
                        a1 = madd(a1, load8(w, c + 8), load8(xb, c + 8))
                        c += 16
                    }
                    out[t * R + r] += (a0 + a1).sum()
                }
            }
        }
    }
}

// MARK: - Block loaders (8 weights of a 32-weight block per load; `index` is a multiple of 8)

@usableFromInline
enum Q8_0Loader: WeightLoader {
    @usableFromInline static var stride: Int { 0 }
    @inline(__always) @usableFromInline
    static func rowBytes(_ cols: Int) -> Int { (cols &>> 5) &* 34 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        let block = base + (index &>> 5) &* 34
        let q = block.loadUnaligned(fromByteOffset: 2 &+ (index & 31), as: SIMD8<Int8>.self)
        return SIMD8<Float>(
            Float(q[0]), Float(q[1]), Float(q[2]), Float(q[3]), Float(q[4]), Float(q[5]), Float(q[6]), Float(q[7]))
            * half(block, 0)
    }
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        quantizedElementReference(base, type: .q8_0, index: index)
    }
}

@usableFromInline
enum Q4_0Loader: WeightLoader {
    @usableFromInline static var stride: Int { 0 }
    @inline(__always) @usableFromInline
    static func rowBytes(_ cols: Int) -> Int { (cols &>> 5) &* 18 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        let block = base + (index &>> 5) &* 18
        let g = index & 31
        let v = block.loadUnaligned(fromByteOffset: 2 &+ (g & 15), as: SIMD8<UInt8>.self)
        let q = g < 16 ? v & 0xF : v &>> 4
        return (floats(q) - 8) * half(block, 0)
    }
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        quantizedElementReference(base, type: .q4_0, index: index)
    }
}

@usableFromInline
enum Q4_1Loader: WeightLoader {
    @usableFromInline static var stride: Int { 0 }
    @inline(__always) @usableFromInline
    static func rowBytes(_ cols: Int) -> Int { (cols &>> 5) &* 20 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        let block = base + (index &>> 5) &* 20
        let g = index & 31
        let v = block.loadUnaligned(fromByteOffset: 4 &+ (g & 15), as: SIMD8<UInt8>.self)
        let q = g < 16 ? v & 0xF : v &>> 4
        return madd(SIMD8<Float>(repeating: half(block, 2)), floats(q), SIMD8<Float>(repeating: half(block, 0)))
    }
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        quantizedElementReference(base, type: .q4_1, index: index)
    }
}

/// Q6_K through the f32 tiles (prefill stages each 4-row tile as f32 once, so this per-8 decode is
/// amortized over the chunk's tokens; decode uses QuantizedInt16.swift's integer kernel).
@usableFromInline
enum Q6_KLoader: WeightLoader {
    @usableFromInline static var stride: Int { 0 }
    @inline(__always) @usableFromInline
    static func rowBytes(_ cols: Int) -> Int { (cols &>> 8) &* 210 }
    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        let block = base + (index &>> 8) &* 210
        let i = index & 255, h = i &>> 7, quarter = (i & 127) &>> 5, l = i & 31
        let lowBytes = block.loadUnaligned(fromByteOffset: h &* 64 &+ (quarter & 1) &* 32 &+ l, as: SIMD8<UInt8>.self)
        let highBytes = block.loadUnaligned(fromByteOffset: 128 &+ h &* 32 &+ l, as: SIMD8<UInt8>.self)
        let nibble = quarter < 2 ? lowBytes & 0xF : lowBytes &>> 4
        let q = nibble | ((highBytes &>> UInt8(2 &* quarter)) & 3) &<< 4
        let scale = Float(block.load(fromByteOffset: 192 &+ h &* 8 &+ (l &>> 4) &+ 2 &* quarter, as: Int8.self))
        return (floats(q) - 32) * (half(block, 208) * scale)
    }
    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        quantizedElementReference(base, type: .q6_K, index: index)
    }
}

// MARK: - Naive twin

/// Weight `index` of a quantized buffer, decoded alone with scalar code (the oracle for the kernels).
public func quantizedElementReference(_ base: UnsafeRawPointer, type: BlockQuantization, index: Int) -> Float {
    let block = base + (index / type.blockSize) * type.blockBytes
    let i = index % type.blockSize
    func byte(_ o: Int) -> UInt8 { block.load(fromByteOffset: o, as: UInt8.self) }
    func f16(_ o: Int) -> Float { Float(Float16(bitPattern: UInt16(byte(o)) | UInt16(byte(o + 1)) << 8)) }
    switch type {
    case .q8_0: return f16(0) * Float(Int8(bitPattern: byte(2 + i)))
    case .q4_0:
        let q = i < 16 ? byte(2 + i) & 0xF : byte(2 + i - 16) >> 4
        return f16(0) * (Float(q) - 8)
    case .q4_1:
        let q = i < 16 ? byte(4 + i) & 0xF : byte(4 + i - 16) >> 4
        return f16(0) * Float(q) + f16(2)
    case .q4_K:
        let sub = i / 32, pair = sub / 2
        let q = byte(16 + pair * 32 + i % 32)
        let nibble = sub % 2 == 0 ? q & 0xF : q >> 4
        let sc: UInt8, mn: UInt8
        if sub < 4 {
            sc = byte(4 + sub) & 63
            mn = byte(4 + sub + 4) & 63
        } else {
            sc = (byte(4 + sub + 4) & 0xF) | ((byte(4 + sub - 4) >> 6) << 4)
            mn = (byte(4 + sub + 4) >> 4) | ((byte(4 + sub) >> 6) << 4)
        }
        return f16(0) * Float(sc) * Float(nibble) - f16(2) * Float(mn)
    case .q6_K:
        let halfIndex = i / 128, j = i % 128, quarter = j / 32, l = j % 32
        let ql = byte(halfIndex * 64 + l + (quarter % 2 == 1 ? 32 : 0))
        let low = quarter < 2 ? ql & 0xF : ql >> 4
        let high = (byte(128 + halfIndex * 32 + l) >> (2 * UInt8(quarter))) & 3
        let q = Int(low | (high << 4)) - 32
        let scale = Float(Int8(bitPattern: byte(192 + halfIndex * 8 + l / 16 + 2 * quarter)))
        return f16(208) * scale * Float(q)
    }
}

/// The reference for `matMulQuantized`: scalar de-quantization of every weight, accumulated in Double.
public func matMulQuantizedReference(
    _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
    weight: UnsafeRawPointer, type: BlockQuantization,
    input: UnsafePointer<Float>,  // (tokens, cols)
    tokens: Int, rows: Int, cols: Int
) {
    let rowBytes = type.rowBytes(cols)
    for t in 0..<tokens {
        for r in 0..<rows {
            var sum = 0.0
            for c in 0..<cols {
                sum += Double(quantizedElementReference(weight + r * rowBytes, type: type, index: c)) * Double(input[t * cols + c])
            }
            out[t * rows + r] = Float(sum)
        }
    }
}
