// Builds the tokenizer a GGUF file carries in its `tokenizer.ggml.*` metadata, as llama.cpp's
// llama-vocab.cpp `load` reads it: model `llama` (SentencePiece BPE: pieces, scores, token types) or
// `gpt2` (byte-level BPE: tokens, types, merges, and the pre-tokenizer `tokenizer.ggml.pre` names).

public import InternCore
public import InternTokenizer

public enum GGUFTokenizer {
    /// The tokenizer of `file`.
    /// - Throws: `CheckpointError.malformedGGUF` naming the missing or mistyped key, or `TokenizerError`.
    public static func load(from file: GGUFFile) throws -> any Tokenizer {
        let model = try file.requireString("tokenizer.ggml.model")
        let tokens = try byteStrings(file, "tokenizer.ggml.tokens")
        let types: [Int32] =
            try file["tokenizer.ggml.token_type"].map { value in
                guard let list = value.arrayValue, list.count == tokens.count else {
                    throw CheckpointError.malformedGGUF(
                        file: file.fileName, offset: 0, reason: "tokenizer.ggml.token_type must list one type per token (\(tokens.count))")
                }
                return list.map { Int32(clamping: $0.intValue ?? 1) }
            } ?? Array(repeating: 1, count: tokens.count)
        func id(_ key: String) -> TokenID? { file[key]?.intValue.map { TokenID(clamping: $0) } }
        let bos = id("tokenizer.ggml.bos_token_id")
        let eos = id("tokenizer.ggml.eos_token_id")
        switch model {
        case "gpt2":
            return try ByteLevelBPETokenizer(
                tokens: tokens, types: types, merges: try byteStrings(file, "tokenizer.ggml.merges"),
                preTokenizer: file["tokenizer.ggml.pre"]?.stringValue ?? "default", bosTokenID: bos, eosTokenID: eos,
                addBOS: file["tokenizer.ggml.add_bos_token"]?.boolValue ?? true, source: file.fileName)
        case "llama":
            guard let scoreList = file["tokenizer.ggml.scores"]?.arrayValue, scoreList.count == tokens.count else {
                throw CheckpointError.malformedGGUF(
                    file: file.fileName, offset: 0, reason: "tokenizer.ggml.scores must list one score per token (\(tokens.count))")
            }
            let pieceTypes = types.map { PieceType(rawValue: UInt8(clamping: $0)) ?? .normal }
            let unknown = id("tokenizer.ggml.unknown_token_id").map(Int.init) ?? pieceTypes.firstIndex(of: .unknown) ?? 0
            let spm = SentencePieceModelFile(
                pieces: tokens, scores: scoreList.map { Float($0.doubleValue ?? 0) }, types: pieceTypes, unknownID: unknown,
                bosID: bos.map(Int.init) ?? -1, eosID: eos.map(Int.init) ?? -1,
                addDummyPrefix: file["tokenizer.ggml.add_space_prefix"]?.boolValue ?? true,
                byteFallback: pieceTypes.contains(.byte))
            // Control and user-defined tokens are matched whole in special mode, under their own text.
            let special = pieceTypes.indices.filter { [.control, .userDefined, .unknown].contains(pieceTypes[$0]) }
                .map { SpecialToken(name: String(decoding: tokens[$0], as: UTF8.self), id: TokenID($0)) }
            return try SentencePieceTokenizer(model: spm, path: file.fileName, specialTokens: special)
        default:
            throw TokenizerError.unsupportedModel(path: file.fileName, reason: "tokenizer.ggml.model '\(model)' (supported: llama, gpt2)")
        }
    }

    private static func byteStrings(_ file: GGUFFile, _ key: String) throws -> [[UInt8]] {
        guard let value = file[key] else {
            throw CheckpointError.malformedGGUF(file: file.fileName, offset: 0, reason: "metadata key '\(key)' is missing")
        }
        guard let list = value.arrayValue else {
            throw CheckpointError.malformedGGUF(file: file.fileName, offset: 0, reason: "metadata key '\(key)' is not an array")
        }
        return try list.enumerated().map { i, item in
            guard case .string(let bytes) = item else {
                throw CheckpointError.malformedGGUF(file: file.fileName, offset: 0, reason: "\(key)[\(i)] is not a string")
            }
            return bytes
        }
    }
}
