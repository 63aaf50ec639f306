// Errors of the engine: requests that do not fit the model or its cache.
public import Foundation

public enum EngineError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// The cache would need more positions than it may hold.
    case contextFull(needed: Int, capacity: Int)
    case promptTooLong(promptTokens: Int, contextLength: Int)
    case emptyPrompt
    case invalidParameter(name: String, value: String, reason: String)

    public var description: String {
        switch self {
        case .contextFull(let needed, let capacity):
            "the sequence needs \(needed) positions, but the context holds \(capacity)"
        case .promptTooLong(let prompt, let context):
            "the prompt has \(prompt) tokens, more than the context length \(context)"
        case .emptyPrompt: "the prompt has no tokens"
        case .invalidParameter(let name, let value, let reason): "\(name) = \(value): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}
