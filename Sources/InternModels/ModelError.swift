// Errors of the model layer: `ConfigError` for config.json, `ModelError` for inputs the model refuses.
// Checkpoint files themselves fail with InternCore's `CheckpointError`.
public import Foundation

/// A config.json that cannot describe a model we can run; names the file and the key.
public enum ConfigError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case fileNotFound(path: String)
    case invalidJSON(file: String, reason: String)
    case missingKey(file: String, key: String)
    case invalidValue(file: String, key: String, value: String, reason: String)
    case unsupportedModelType(file: String, modelType: String, supported: [String])

    public var description: String {
        switch self {
        case .fileNotFound(let path): "\(path): no such file"
        case .invalidJSON(let file, let reason): "\(file): invalid JSON: \(reason)"
        case .missingKey(let file, let key): "\(file): missing key '\(key)'"
        case .invalidValue(let file, let key, let value, let reason): "\(file): '\(key)' is \(value): \(reason)"
        case .unsupportedModelType(let file, let type, let supported):
            "\(file): model_type '\(type)' is not supported (supported: \(supported.joined(separator: ", ")))"
        }
    }

    public var errorDescription: String? { description }
}

/// An input the model cannot process.
public enum ModelError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case tokenOutOfRange(id: Int32, vocabularySize: Int)
    case emptyInput

    public var description: String {
        switch self {
        case .tokenOutOfRange(let id, let size): "token id \(id) is outside the vocabulary (0..<\(size))"
        case .emptyInput: "no tokens to process"
        }
    }

    public var errorDescription: String? { description }
}
