// How a KV cache stores its rows, and the conversions in and out. A decode step reads every cached key
// and value of every layer, so at long contexts the cache, not the weights, is what the memory bus carries
// (a 1.8B model at 8k positions: 3.2 GB in f32). f16 halves that for a rounding far below the weights'
// own (llama.cpp's default, `--cache-type-k f16`); q8_0 quarters it: symmetric int8 in blocks of 32 with
// one f32 scale each, llama.cpp's q8_0 layout with the scale kept apart so the codes of a row stay
// contiguous for the attention loads. Rows are written once (as the model computes them) and read by
// `attention` in their stored form; nothing is converted back outside registers.

#if INTERNKIT_FMA
    import _Builtin_intrinsics.intel
#endif

/// The element type of a KV cache.
public enum KVCacheType: String, Sendable, CaseIterable {
    /// 4 bytes an element: exact.
    case f32
    /// 2 bytes an element, the default: 11 significant bits, relative error ≤ 2⁻¹¹.
    case f16
    /// 1.125 bytes an element: int8 codes, one f32 scale per 32 (error ≤ half a step of max|x|/127).
    case q8_0

    /// Elements per q8_0 scale.
    public static let blockSize = 32

    /// Bytes of one element's code (q8_0's scales come on top: 4 bytes per 32 elements).
    public var elementBytes: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        case .q8_0: 1
        }
    }

    /// Bytes one position of a layer takes for keys and values together, scales included.
    public func bytesPerPosition(rowSize: Int) -> Int {
        2 * (rowSize * elementBytes + (self == .q8_0 ? 4 * (rowSize / Self.blockSize) : 0))
    }

    /// Why heads of `headDim` elements cannot be stored this way, or nil when they can (a q8_0 block must
    /// not straddle two heads, since attention reads one head at a time).
    public func unsupportedReason(headDim: Int) -> String? {
        guard self == .q8_0, headDim % Self.blockSize != 0 else { return nil }
        return "a q8_0 KV cache needs a head dimension divisible by \(Self.blockSize); this model's is \(headDim)"
    }
}

/// One layer's cached keys and values: `rowSize` (kvHeads × headDim) elements a position, in `type`.
/// A view over storage the cache owns; valid until the cache grows.
public struct KVLayer {
    public let type: KVCacheType
    public let rowSize: Int
    /// (positions, rowSize) elements of `type`.
    public let keys: UnsafeMutableRawPointer
    public let values: UnsafeMutableRawPointer
    /// q8_0 only: (positions, rowSize / 32) scales.
    public let keyScales: UnsafeMutablePointer<Float>?
    public let valueScales: UnsafeMutablePointer<Float>?

    public init(
        type: KVCacheType, rowSize: Int, keys: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer,
        keyScales: UnsafeMutablePointer<Float>? = nil, valueScales: UnsafeMutablePointer<Float>? = nil
    ) {
        precondition(type != .q8_0 || (keyScales != nil && valueScales != nil && rowSize % KVCacheType.blockSize == 0))
        self.type = type
        self.rowSize = rowSize
        self.keys = keys
        self.values = values
        self.keyScales = keyScales
        self.valueScales = valueScales
    }

    /// Writes positions `position..<position + rows` from f32 rows (`rowSize` floats each).
    public func store(position: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, rows: Int) {
        let offset = position * rowSize, count = rows * rowSize
        switch type {
        case .f32:
            (keys.assumingMemoryBound(to: Float.self) + offset).update(from: k, count: count)
            (values.assumingMemoryBound(to: Float.self) + offset).update(from: v, count: count)
        case .f16:
            storeF16(keys.assumingMemoryBound(to: UInt16.self) + offset, k, count)
            storeF16(values.assumingMemoryBound(to: UInt16.self) + offset, v, count)
        case .q8_0:
            let blocks = offset / KVCacheType.blockSize
            storeQ8(keys.assumingMemoryBound(to: Int8.self) + offset, keyScales! + blocks, k, count)
            storeQ8(values.assumingMemoryBound(to: Int8.self) + offset, valueScales! + blocks, v, count)
        }
    }

    /// Position `p`'s key row as f32 (references and tests; attention reads the stored form).
    public func key(_ p: Int, into out: UnsafeMutablePointer<Float>) { load(keys, keyScales, p, out) }

    /// Position `p`'s value row as f32.
    public func value(_ p: Int, into out: UnsafeMutablePointer<Float>) { load(values, valueScales, p, out) }

    private func load(_ base: UnsafeMutableRawPointer, _ scales: UnsafeMutablePointer<Float>?, _ p: Int, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<rowSize {
            let index = p * rowSize + i
            out[i] =
                switch type {
                case .f32: F32Loader.load1(base, index)
                case .f16: F16Loader.load1(base, index)
                case .q8_0: Q8Loader.load1(base, index) * scales![index / KVCacheType.blockSize]
                }
        }
    }
}

/// f32 → f16, round to nearest even (F16C's vcvtps2ph on the Haswell target).
private func storeF16(_ out: UnsafeMutablePointer<UInt16>, _ x: UnsafePointer<Float>, _ count: Int) {
    for i in 0..<count { out[i] = Float16(x[i]).bitPattern }
}

/// f32 → int8 codes in blocks of 32: d = max|x| / 127, q = round(x / d) (llama.cpp `quantize_row_q8_0`).
private func storeQ8(_ out: UnsafeMutablePointer<Int8>, _ scales: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int) {
    let n = KVCacheType.blockSize
    for b in 0..<(count / n) {
        let block = x + b * n
        var amax: Float = 0
        for i in 0..<n { amax = max(amax, abs(block[i])) }
        let d = amax / 127
        let inverse: Float = d > 0 ? 1 / d : 0
        for i in 0..<n { out[b * n + i] = Int8((block[i] * inverse).rounded(.toNearestOrEven)) }
        scales[b] = d
    }
}

/// KV elements as f32 before any block scale: the float loaders of MatMul.swift plus int8 codes.
@usableFromInline
protocol KVElementLoader {
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float>
    /// 16 consecutive elements (the default: two `load8`s; one 512-bit conversion where AVX-512 is).
    static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float
    /// Whether elements carry a per-32 scale (a constant, so the specialised loops drop the multiply).
    static var isBlockScaled: Bool { get }
    /// Bytes per element (the codes only for q8_0).
    static var stride: Int { get }
}

extension KVElementLoader {
    @inline(__always) @usableFromInline
    static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        SIMD16(lowHalf: load8(base, index), highHalf: load8(base, index &+ 8))
    }
}

extension F32Loader: KVElementLoader {
    @usableFromInline static var isBlockScaled: Bool { false }

    @inline(__always) @usableFromInline
    static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD16<Float>.self)
    }
}

extension F16Loader: KVElementLoader {
    @usableFromInline static var isBlockScaled: Bool { false }

    #if INTERNKIT_AVX512
        @inline(__always) @usableFromInline
        static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> { loadVector(base, index) }
    #endif
}

@usableFromInline
enum Q8Loader: KVElementLoader {
    @usableFromInline static var isBlockScaled: Bool { true }
    @usableFromInline static var stride: Int { 1 }

    @inline(__always) @usableFromInline
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        #if INTERNKIT_FMA
            let codes = _mm_cvtsi64_si128(base.loadUnaligned(fromByteOffset: index, as: Int64.self))
            return unsafeBitCast(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes)), to: SIMD8<Float>.self)
        #else
            let v = base.loadUnaligned(fromByteOffset: index, as: SIMD8<Int8>.self)
            return SIMD8(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]), Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]))
        #endif
    }

    #if INTERNKIT_AVX512
        @inline(__always) @usableFromInline
        static func load16(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
            let codes = base.loadUnaligned(fromByteOffset: index, as: __m128i.self)
            return unsafeBitCast(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(codes)), to: SIMD16<Float>.self)
        }
    #endif

    @inline(__always) @usableFromInline
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(base.load(fromByteOffset: index, as: Int8.self))
    }
}
