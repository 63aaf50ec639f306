// Element types of checkpoint tensors, as safetensors spells them. Only the floating types InternLM2
// checkpoints ship with are supported; the rest of the safetensors vocabulary is rejected by name.
public import InternKernels

/// A tensor element type in a checkpoint.
public enum DType: String, Sendable, CaseIterable, Codable {
    case bf16 = "BF16"
    case f16 = "F16"
    case f32 = "F32"

    /// Bytes per element.
    public var byteSize: Int { kernelType.byteSize }

    /// The storage type the kernels read.
    public var kernelType: WeightType {
        switch self {
        case .bf16: .bf16
        case .f16: .f16
        case .f32: .f32
        }
    }
}
