// The one error type for reading checkpoints: every case names the file and, where there is one, the
// tensor, with the expected and actual values, so a user can tell which download is broken.
public import Foundation

/// A checkpoint that cannot be loaded as it is on disk.
public enum CheckpointError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    /// The file is shorter than the 8-byte header length, or the header length reaches past the end.
    case headerLengthBeyondFile(file: String, headerLength: UInt64, fileSize: Int)
    case corruptHeader(file: String, reason: String)
    case unsupportedDType(file: String, tensor: String, dtype: String)
    /// The tensor's data_offsets reach past the data section: the file is truncated, or the header lies.
    case dataOutOfRange(file: String, tensor: String, offsets: [Int], dataSize: Int)
    case sizeMismatch(file: String, tensor: String, dtype: String, shape: [Int], expectedBytes: Int, actualBytes: Int)
    case overlappingTensors(file: String, first: String, second: String)
    case missingTensor(file: String, tensor: String)
    case unexpectedTensor(file: String, tensor: String)
    case duplicateTensor(tensor: String, files: [String])
    case shapeMismatch(file: String, tensor: String, expected: [Int], actual: [Int])
    case dtypeMismatch(file: String, tensor: String, expected: String, actual: String)
    case corruptIndex(file: String, reason: String)
    case noWeights(directory: String)
    /// A GGUF file that is truncated or corrupt; `offset` is where reading stopped.
    case malformedGGUF(file: String, offset: Int, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): "\(path): no such file"
        case .unreadable(let path, let reason): "\(path): cannot be read: \(reason)"
        case .headerLengthBeyondFile(let file, let length, let size):
            "\(file): safetensors header length \(length) reaches past the end of the file (\(size) bytes); the file is truncated or not safetensors"
        case .corruptHeader(let file, let reason): "\(file): corrupt safetensors header: \(reason)"
        case .unsupportedDType(let file, let tensor, let dtype):
            "\(file): tensor '\(tensor)' has dtype \(dtype); supported: BF16, F16, F32"
        case .dataOutOfRange(let file, let tensor, let offsets, let size):
            "\(file): tensor '\(tensor)' data_offsets \(offsets) reach past the end of the data (\(size) bytes); the file is truncated or its header is wrong"
        case .sizeMismatch(let file, let tensor, let dtype, let shape, let expected, let actual):
            "\(file): tensor '\(tensor)' is \(actual) bytes, but \(dtype) \(shape) needs \(expected)"
        case .overlappingTensors(let file, let first, let second):
            "\(file): tensors '\(first)' and '\(second)' overlap in the data section"
        case .missingTensor(let file, let tensor): "\(file): tensor '\(tensor)' is missing"
        case .unexpectedTensor(let file, let tensor): "\(file): unexpected tensor '\(tensor)' (not part of this model)"
        case .duplicateTensor(let tensor, let files): "tensor '\(tensor)' appears in more than one file: \(files)"
        case .shapeMismatch(let file, let tensor, let expected, let actual):
            "\(file): tensor '\(tensor)' has shape \(actual), expected \(expected)"
        case .dtypeMismatch(let file, let tensor, let expected, let actual):
            "\(file): tensor '\(tensor)' has dtype \(actual), expected \(expected)"
        case .corruptIndex(let file, let reason): "\(file): corrupt safetensors index: \(reason)"
        case .malformedGGUF(let file, let offset, let reason): "\(file): invalid GGUF (byte \(offset)): \(reason)"
        case .noWeights(let directory):
            "\(directory): no model.safetensors or model.safetensors.index.json"
        }
    }

    public var errorDescription: String? { description }
}
