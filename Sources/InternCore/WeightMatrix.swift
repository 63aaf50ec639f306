// A weight matrix as the model uses it, whatever file it came from: safetensors (f32, f16, bf16) or GGUF
// (those, or ggml blocks read in place). It keeps its file mapped and dispatches products and row reads
// to the matching kernel, so the model code does not care how a weight is stored.
import Foundation
public import InternKernels

/// How a matrix's elements are stored.
public enum WeightStorage: Sendable, Equatable {
    case float(WeightType)
    case quantized(BlockQuantization)

    public var name: String {
        switch self {
        case .float(let t): t.rawValue
        case .quantized(let q): q.rawValue
        }
    }
}

/// A (rows, cols) weight matrix in a mapped file, in the `nn.Linear` layout (row = output feature).
public struct WeightMatrix: @unchecked Sendable {
    public let data: UnsafeRawPointer
    public let storage: WeightStorage
    public let rows: Int
    public let cols: Int
    /// The mapping `data` points into, kept alive as long as the matrix.
    let owner: AnyObject
    /// A lossless 12-bit copy of a bf16 matrix that products read instead of `data` (`packedBFloat16`).
    public private(set) var packed: PackedBFloat16Matrix?

    public init(data: UnsafeRawPointer, storage: WeightStorage, rows: Int, cols: Int, owner: AnyObject) {
        self.data = data
        self.storage = storage
        self.rows = rows
        self.cols = cols
        self.owner = owner
    }

    /// A safetensors float tensor of one or two dimensions; U8 tensors need `init(_:quantization:cols:)`.
    public init(_ view: TensorView) throws {
        guard let type = view.dtype.kernelType else {
            throw CheckpointError.unsupportedDType(file: view.file, tensor: view.name, dtype: view.dtype.rawValue)
        }
        self.init(
            data: view.data, storage: .float(type), rows: view.shape[0],
            cols: view.shape.count > 1 ? view.shape[1] : 1, owner: view.mapping)
    }

    /// A U8 safetensors tensor of shape (rows, rowBytes) holding `quantization` blocks of `cols` weights
    /// per row (`intern quantize`'s layout).
    public init(_ view: TensorView, quantization: BlockQuantization, rows: Int, cols: Int) throws {
        guard view.dtype == .u8, cols % quantization.blockSize == 0 else {
            throw CheckpointError.unsupportedDType(file: view.file, tensor: view.name, dtype: view.dtype.rawValue)
        }
        let expected = [rows, quantization.rowBytes(cols)]
        guard view.shape == expected else {
            throw CheckpointError.shapeMismatch(file: view.file, tensor: view.name, expected: expected, actual: view.shape)
        }
        self.init(data: view.data, storage: .quantized(quantization), rows: rows, cols: cols, owner: view.mapping)
    }

    /// Whether bf16 matrices get a packed copy (`packedBFloat16`): where the packed kernel is
    /// vectorized, unless INTERNKIT_PACKED_BF16=0.
    public static let packsBFloat16: Bool =
        packedBFloat16IsVectorized && ProcessInfo.processInfo.environment["INTERNKIT_PACKED_BF16"] != "0"

    /// This matrix with a packed copy (`PackedBFloat16Matrix`: 12 bits a weight, bit-exact) that its products
    /// read instead of the mapped bf16, when it is bf16, its rows are whole chunks of 64 and `packsBFloat16`;
    /// else itself. Decode steps are bound by the bytes they read (BENCHMARKS.md, CPU inference). The mapped
    /// pages are then released (row reads, as of a tied embedding, page them in again).
    public func packedBFloat16(pool: ThreadPool?) -> WeightMatrix {
        guard Self.packsBFloat16, storage == .float(.bf16), packed == nil, cols % 64 == 0,
            let packed = PackedBFloat16Matrix(bf16: data, rows: rows, cols: cols, pool: pool)
        else { return self }
        var copy = self
        copy.packed = packed
        (owner as? MappedFile)?.releasePages(data, bytes: byteCount)
        return copy
    }

    /// Whether matrices that are not packed get a copy in anonymous huge pages (`preparedForProducts`): unless
    /// INTERNKIT_RESIDENT_WEIGHTS=0 (which reads them in place from the mapped file, as llama.cpp's mmap).
    public static let copiesToHugePages: Bool = ProcessInfo.processInfo.environment["INTERNKIT_RESIDENT_WEIGHTS"] != "0"

    /// This matrix as products should read it: its packed bf16 copy where `packedBFloat16` makes one, else a
    /// copy in anonymous huge pages (`PageBuffer`: fewer TLB misses while decode streams it) where
    /// `copiesToHugePages`, else itself. The mapped pages are released either way.
    public func preparedForProducts(pool: ThreadPool?) -> WeightMatrix {
        let packed = packedBFloat16(pool: pool)
        guard packed.packed == nil, Self.copiesToHugePages, !(owner is PageBuffer) else { return packed }
        let bytes = byteCount, copy = PageBuffer(byteCount: bytes)
        let source = SendablePointer(UnsafeMutableRawPointer(mutating: data).assumingMemoryBound(to: UInt8.self))
        let target = SendablePointer(copy.base.assumingMemoryBound(to: UInt8.self))
        let file = owner as? MappedFile
        // 2 MiB pieces: each thread faults its own huge pages in.
        let piece = 1 << 21, pieces = (bytes + piece - 1) / piece
        let body = { (range: Range<Int>, _: Int) in
            for p in range {
                let start = p * piece, count = min(piece, bytes - start)
                if file?.copy(source.base + start, bytes: count, to: target.base + start) != true {
                    (target.base + start).update(from: source.base + start, count: count)
                }
            }
        }
        if let pool { pool.parallelFor(pieces, granularity: 1, body) } else { body(0..<pieces, 0) }
        file?.releasePages(data, bytes: bytes)
        return WeightMatrix(data: copy.base, storage: storage, rows: rows, cols: cols, owner: copy)
    }

    /// Bytes the matrix occupies.
    public var byteCount: Int {
        switch storage {
        case .float(let t): rows * cols * t.byteSize
        case .quantized(let q): rows * q.rowBytes(cols)
        }
    }

    /// How Q8_0/Q4_0/Q4_1/Q6_K products treat the activations in decode, from INTERNKIT_ACTIVATIONS (`int16`,
    /// `int8` or `f32`). Default where vectorized: 16 bits (`matMulQuantizedInt16`: integer dot products
    /// within ~1e-5 of exact), except Q4_0 and Q6_K on the vector tiers, which take 8 bits (`matMulQuantizedInt8`,
    /// llama.cpp's choice): their `vpmaddubsw` (AVX2) or `vpdpbusd` (AVX-512) kernels need half the integer
    /// multiplies, the bound of decode on cores with one multiply pipe (BENCHMARKS.md, CPU inference). 8 bits stay off Q8_0 and Q4_1: there
    /// they save no multiplies, and on SmolLM2's Q4_1 file with its Q8_0 output they turn the greedy answer
    /// to "What is the capital of France?" into llama.cpp's degenerate one (scripts/check-smollm.py).
    /// Elsewhere exact f32. `int8` forces 8 bits wherever supported, prefill included; `int16` and `f32`
    /// force theirs (`f32` also in prefill and for bf16 weights). `bf16` names the default of bf16 weights on
    /// AVX512-BF16 hosts (see `roundsBFloat16Activations`).
    public enum ActivationPrecision: String, Sendable { case f32, int16, int8, bf16 }

    /// Whether products of bf16 weights round the activations to bf16 (`vdpbf16ps`): the default on AVX512-BF16
    /// hosts unless INTERNKIT_ACTIVATIONS=f32. It is llama.cpp's arithmetic for bf16 models (and transformers' in
    /// bf16, which rounds far more), the same choice as Q8_0/Q4_0's 8-bit activations. In prefill
    /// (`matMulBF16Prefill`) it is twice the products per instruction of exact f32 FMAs, whose chain cannot reach
    /// llama.cpp's bf16 prefill on these cores; in decode (`PackedBFloat16Matrix.multiplyBFloat16`,
    /// `matMulBF16Decode`) the packed weights meet the activations as bf16 words, without the widening to f32 that
    /// bounded the packed kernel below llama.cpp where memory is fast (BENCHMARKS.md, CPU inference). The weights
    /// are bf16 already; the activations' rounding (relative 2^-9) is the difference. `f32` restores exact
    /// products: transformers' f32 logits to 1e-4 (ModelCommandTests checks both paths).
    public static let roundsBFloat16Activations = bf16PrefillIsVectorized && requestedActivationPrecision != .f32

    static let requestedActivationPrecision: ActivationPrecision? = {
        switch ProcessInfo.processInfo.environment["INTERNKIT_ACTIVATIONS"] {
        case "f32": .f32
        case "int16" where int16ActivationsAreVectorized: .int16
        case "int8" where int8ActivationsAreVectorized: .int8
        case "bf16" where bf16PrefillIsVectorized: .bf16
        default: nil
        }
    }()

    /// Why `precision` cannot be asked for in this build (nil when it can): what INTERNKIT_ACTIVATIONS (or
    /// `--activations`) would otherwise ignore.
    public static func unsupportedReason(_ precision: ActivationPrecision) -> String? {
        switch precision {
        case .f32: nil
        case .int16: int16ActivationsAreVectorized ? nil : "needs a build with AVX2 or AVX-512 kernels"
        case .int8: int8ActivationsAreVectorized ? nil : "needs a build with AVX2 or AVX-512 kernels"
        case .bf16: bf16PrefillIsVectorized ? nil : "needs a build for a CPU with AVX512-BF16 (Intel Cooper Lake and later, AMD Zen 4)"
        }
    }

    /// The activation precision of `type`'s products in decode.
    public static func activationPrecision(for type: BlockQuantization) -> ActivationPrecision {
        if let requested = requestedActivationPrecision {
            switch requested {
            case .int8 where supportsInt8Activations(type): return .int8
            case .int16 where supportsInt16Activations(type): return .int16
            case .f32: return .f32
            default: break
            }
        }
        if prefersInt8Activations(type) { return .int8 }
        return int16ActivationsAreVectorized && supportsInt16Activations(type) ? .int16 : .f32
    }

    /// out (tokens, rows) = input (tokens, cols) · Wᵀ. On AVX512-BF16 hosts bf16 weights take bf16 activations
    /// and `vdpbf16ps` in both phases (`roundsBFloat16Activations`). `prefill` (a multi-token prompt chunk): on
    /// AVX-512 builds Q8_0 and Q4_0 take 8-bit activations and the repacked VNNI kernel
    /// (`matMulQuantizedInt8Prefill`, llama.cpp's choice: 4× the products per instruction of f32 FMAs);
    /// everything else keeps exact f32 activations in prefill (unless INTERNKIT_ACTIVATIONS=int8) through the blocked GEMM
    /// (`matMulPrefill`, PrefillGEMM.swift; Q4_K block by block), which reuses each de-quantized weight across the chunk's tokens
    /// and beats the one-token integer products there, while in decode (one token per sequence) they win.
    /// The choice depends on the phase, never on the token count, so a decode row's result is the same alone
    /// or in a batch.
    public func multiply(
        _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
        _ input: UnsafePointer<Float>,  // (tokens, cols)
        tokens: Int, prefill: Bool = false, pool: ThreadPool?
    ) {
        switch storage {
        case .float(let t):
            if t == .bf16 && Self.roundsBFloat16Activations {
                switch (packed, prefill) {
                case (let packed?, true): packed.multiplyPrefillBFloat16(out, input: input, tokens: tokens, pool: pool)
                case (let packed?, false): packed.multiplyBFloat16(out, input: input, tokens: tokens, pool: pool)
                case (nil, true): matMulBF16Prefill(out, weight: data, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
                case (nil, false): matMulBF16Decode(out, weight: data, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
                }
            } else if let packed {
                if prefill {
                    packed.multiplyPrefill(out, input: input, tokens: tokens, pool: pool)
                } else {
                    packed.multiply(out, input: input, tokens: tokens, pool: pool)
                }
            } else if !prefill {
                matMulDecode(out, weight: data, type: t, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
            } else {
                matMulPrefill(out, weight: data, type: t, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
            }
        case .quantized(let q):
            let precision = Self.activationPrecision(for: q)
            if prefill && int8PrefillIsVectorized && supportsInt8Prefill(q) && Self.requestedActivationPrecision != .f32 {
                matMulQuantizedInt8Prefill(out, weight: data, type: q, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
            } else if precision == .int8 && (!prefill || Self.requestedActivationPrecision == .int8) {
                matMulQuantizedInt8(out, weight: data, type: q, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
            } else if precision == .int16 && !prefill {
                matMulQuantizedInt16(out, weight: data, type: q, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
            } else if prefill {
                matMulQuantizedPrefill(out, weight: data, type: q, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
            } else {
                matMulQuantized(out, weight: data, type: q, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
            }
        }
    }

    /// Row `row` as f32 (an embedding lookup).
    public func readRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        switch storage {
        case .float(let t): convertToFloat(out, from: data, type: t, offset: row * cols, count: cols)
        case .quantized(let q): dequantize(out, from: data + row * q.rowBytes(cols), type: q, offset: 0, count: cols)
        }
    }

    /// The whole matrix as f32 (small tensors such as norm weights).
    public func floats() -> [Float] {
        var values = [Float](repeating: 0, count: rows * cols)
        values.withUnsafeMutableBufferPointer { buffer in
            for r in 0..<rows { readRow(r, into: buffer.baseAddress! + r * cols) }
        }
        return values
    }
}
