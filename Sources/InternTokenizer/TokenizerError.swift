// The one error type of the tokenizer module. Every case names the file or input position a user
// needs to fix the problem.

/// Errors raised while loading a tokenizer model or handling token ids.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read at all.
    case unreadableFile(path: String, reason: String)
    /// The bytes are not a well-formed SentencePiece `ModelProto`.
    case malformedModel(path: String, offset: Int, reason: String)
    /// The model is a valid SentencePiece file, but uses a feature this tokenizer does not implement.
    case unsupportedModel(path: String, reason: String)
    /// An id passed to `decode` or `piece(for:)` is outside the vocabulary.
    case idOutOfRange(id: Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            return "\(path): cannot read tokenizer model: \(reason)"
        case .malformedModel(let path, let offset, let reason):
            return "\(path): not a valid SentencePiece model (byte \(offset)): \(reason)"
        case .unsupportedModel(let path, let reason):
            return "\(path): unsupported SentencePiece model: \(reason)"
        case .idOutOfRange(let id, let vocabularySize):
            return "token id \(id) is out of range for a vocabulary of \(vocabularySize) pieces"
        }
    }
}
