// Element types of checkpoint tensors, as safetensors spells them. The floating types InternLM2
// checkpoints ship with, and U8 for quantized checkpoints; the rest of the vocabulary is rejected by name.
public import InternKernels

/// A tensor element type in a checkpoint.
public enum DType: String, Sendable, CaseIterable, Codable {
    case bf16 = "BF16"
    case f16 = "F16"
    case f32 = "F32"
    /// Raw bytes: the packed ggml blocks of a checkpoint written by `intern quantize` (config.json's
    /// `quantization` says which).
    case u8 = "U8"

    /// Bytes per element.
    public var byteSize: Int { kernelType?.byteSize ?? 1 }

    /// The float storage type the kernels read; nil for U8 (block-quantized bytes).
    public var kernelType: WeightType? {
        switch self {
        case .bf16: .bf16
        case .f16: .f16
        case .f32: .f32
        case .u8: nil
        }
    }
}
