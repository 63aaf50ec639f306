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

    /// Bytes the matrix occupies.
    public var byteCount: Int {
        switch storage {
        case .float(let t): rows * cols * t.byteSize
        case .quantized(let q): rows * q.rowBytes(cols)
        }
    }

    /// Whether Q8_0/Q4_0 products quantize the activations to 8 bits (`matMulQuantizedInt8`: integer dot
    /// products, faster, with an activation rounding error) instead of multiplying exact f32 activations.
    /// Off by default: on SmolLM2's Q4_1 file (Q8_0 tied output) 8-bit activations turn the greedy answer to
    /// "What is the capital of France?" into llama.cpp's degenerate one, while exact activations match the F32
    /// copy (scripts/check-smollm.py). INTERNKIT_INT8_ACTIVATIONS=1 turns it on where it is vectorized.
    public static let int8Activations: Bool = {
        ProcessInfo.processInfo.environment["INTERNKIT_INT8_ACTIVATIONS"] == "1" && int8ActivationsAreVectorized
    }()

    /// out (tokens, rows) = input (tokens, cols) · Wᵀ.
    public func multiply(
        _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
        _ input: UnsafePointer<Float>,  // (tokens, cols)
        tokens: Int, pool: ThreadPool?
    ) {
        switch storage {
        case .float(let t): matMul(out, weight: data, type: t, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
        case .quantized(let q) where Self.int8Activations && supportsInt8Activations(q):
            matMulQuantizedInt8(out, weight: data, type: q, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
        case .quantized(let q):
            matMulQuantized(out, weight: data, type: q, input: input, tokens: tokens, rows: rows, cols: cols, pool: pool)
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
