// The SentencePiece BPE tokenizer (InternLM2, and GGUF files of tokenizer model `llama`): normalizer,
// BPE encoder, decoder and the special-token layer HF's `InternLM2Tokenizer` adds on top.
// Normalizer: only `identity` (no precompiled charsmap), which InternLM2 and Llama use; others are
// rejected when loading rather than encoded wrongly.

public import Foundation

/// A SentencePiece BPE tokenizer, id-for-id equal to the `sentencepiece` library.
public final class SentencePieceTokenizer: Tokenizer {
    public let vocabularySize: Int
    public let bosTokenID: TokenID?
    public let eosTokenID: TokenID?
    public let specialTokens: [SpecialToken]

    private let pieces: [[UInt8]]
    private let types: [PieceType]
    private let encoder: BPEEncoder
    private let addDummyPrefix: Bool
    private let removeExtraWhitespaces: Bool
    private let escapeWhitespaces: Bool
    /// Decoded bytes of every id under `.raw` rendering (▁ turned back into a space, bytes unwrapped).
    private let rawBytes: [[UInt8]]
    private let specialNames: [TokenID: [UInt8]]
    /// Special tokens by first byte, longest first, for leftmost-longest splitting.
    private let specialByFirstByte: [UInt8: [(bytes: [UInt8], id: TokenID)]]

    /// The InternLM2 chat tokens: HF `tokenizer_config.json` renames six user-defined pieces.
    public static let internLM2SpecialTokens: [SpecialToken] = [
        .init(name: "<unk>", id: 0), .init(name: "<s>", id: 1), .init(name: "</s>", id: 2),
        .init(name: "<|plugin|>", id: 92538), .init(name: "<|interpreter|>", id: 92539),
        .init(name: "<|action_end|>", id: 92540), .init(name: "<|action_start|>", id: 92541),
        .init(name: "<|im_end|>", id: 92542), .init(name: "<|im_start|>", id: 92543),
    ]

    /// Loads a `.model` file.
    /// - Parameter specialTokens: the added-token table; by default the InternLM2 table when the vocabulary
    ///   is InternLM2's, else the model's control and unknown pieces under their own names.
    public convenience init(contentsOf url: URL, specialTokens: [SpecialToken]? = nil) throws(TokenizerError) {
        let file = try SentencePieceModelFile(contentsOf: url)
        try self.init(model: file, path: url.path, specialTokens: specialTokens)
    }

    public init(model: SentencePieceModelFile, path: String = "<memory>", specialTokens: [SpecialToken]? = nil)
        throws(TokenizerError)
    {
        guard model.modelType == 2 else {
            let names = [1: "UNIGRAM", 3: "WORD", 4: "CHAR"]
            throw .unsupportedModel(path: path, reason: "model_type \(names[model.modelType] ?? String(model.modelType)); only BPE is supported")
        }
        guard model.precompiledCharsmapSize == 0 else {
            throw .unsupportedModel(path: path, reason: "normalizer '\(model.normalizerName)' with a precompiled charsmap; only 'identity' is supported")
        }
        guard !model.treatWhitespaceAsSuffix else {
            throw .unsupportedModel(path: path, reason: "treat_whitespace_as_suffix=true")
        }
        vocabularySize = model.pieces.count
        pieces = model.pieces
        types = model.types
        addDummyPrefix = model.addDummyPrefix
        removeExtraWhitespaces = model.removeExtraWhitespaces
        escapeWhitespaces = model.escapeWhitespaces
        func validID(_ id: Int) -> TokenID? { id >= 0 && id < model.pieces.count ? TokenID(id) : nil }
        bosTokenID = validID(model.bosID)
        eosTokenID = validID(model.eosID)
        encoder = BPEEncoder(
            pieces: model.pieces, scores: model.scores, types: model.types,
            unknownID: model.unknownID, byteFallback: model.byteFallback)

        let isInternLM2 = model.pieces.count == 92544 && model.pieces[92543] == Array("[UNUSED_TOKEN_146]".utf8)
        let table: [SpecialToken]
        if let specialTokens {
            table = specialTokens
        } else if isInternLM2 {
            table = Self.internLM2SpecialTokens
        } else {
            table = model.types.indices.filter { model.types[$0] == .control || model.types[$0] == .unknown }
                .map { SpecialToken(name: String(decoding: model.pieces[$0], as: UTF8.self), id: TokenID($0)) }
        }
        for token in table where token.id < 0 || Int(token.id) >= model.pieces.count {
            throw .idOutOfRange(id: Int(token.id), vocabularySize: model.pieces.count)
        }
        self.specialTokens = table
        specialNames = Dictionary(table.map { ($0.id, Array($0.name.utf8)) }, uniquingKeysWith: { a, _ in a })
        var byFirst: [UInt8: [(bytes: [UInt8], id: TokenID)]] = [:]
        for token in table where !token.name.isEmpty {
            let bytes = Array(token.name.utf8)
            byFirst[bytes[0], default: []].append((bytes, token.id))
        }
        for key in byFirst.keys { byFirst[key]!.sort { $0.bytes.count > $1.bytes.count } }
        specialByFirstByte = byFirst

        let space = Array("\u{2581}".utf8)
        rawBytes = model.pieces.indices.map { id in
            let piece = model.pieces[id]
            switch model.types[id] {
            case .control: return []
            case .unknown: return Array(" \u{2047} ".utf8)
            case .byte:
                if piece.count == 6, let v = UInt8(String(decoding: piece[3..<5], as: UTF8.self), radix: 16) { return [v] }
                return piece
            case .normal, .userDefined, .unused:
                return Self.replacing(space, with: [0x20], in: piece)
            }
        }
    }

    // MARK: - Encoding

    public func encode(_ text: String, addBOS: Bool = false, parseSpecialTokens: Bool = false) -> [TokenID] {
        var ids: [TokenID] = []
        ids.reserveCapacity(text.utf8.count / 3 + 2)
        if addBOS, let bosTokenID { ids.append(bosTokenID) }
        let utf8 = Array(text.utf8)
        if !parseSpecialTokens {
            encodePlain(utf8, 0..<utf8.count, into: &ids)
            return ids
        }
        var segmentStart = 0
        var i = 0
        while i < utf8.count {
            if let candidates = specialByFirstByte[utf8[i]],
                let match = candidates.first(where: { c in
                    c.bytes.count <= utf8.count - i && utf8[i..<(i + c.bytes.count)].elementsEqual(c.bytes)
                })
            {
                encodePlain(utf8, segmentStart..<i, into: &ids)
                ids.append(match.id)
                i += match.bytes.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        encodePlain(utf8, segmentStart..<utf8.count, into: &ids)
        return ids
    }

    /// Normalizes one segment (space escaping, optional dummy prefix) and BPE-encodes it.
    private func encodePlain(_ utf8: [UInt8], _ range: Range<Int>, into ids: inout [TokenID]) {
        guard !range.isEmpty else { return }
        var segment = utf8[range]
        if removeExtraWhitespaces {
            segment = Self.collapsingSpaces(segment)
            if segment.isEmpty { return }
        }
        var normalized: [UInt8] = []
        normalized.reserveCapacity(segment.count + segment.count / 4 + 3)
        if addDummyPrefix { normalized.append(contentsOf: escapeWhitespaces ? [0xE2, 0x96, 0x81] : [0x20]) }
        if escapeWhitespaces {
            for b in segment {
                if b == 0x20 { normalized.append(contentsOf: [0xE2, 0x96, 0x81]) } else { normalized.append(b) }
            }
        } else {
            normalized.append(contentsOf: segment)
        }
        normalized.withUnsafeBufferPointer { encoder.encode(normalized: $0, into: &ids) }
    }

    private static func collapsingSpaces(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var out: [UInt8] = []
        var lastWasSpace = true
        for b in s {
            if b == 0x20 {
                if !lastWasSpace { out.append(b) }
                lastWasSpace = true
            } else {
                out.append(b)
                lastWasSpace = false
            }
        }
        if out.last == 0x20 { out.removeLast() }
        return out[...]
    }

    // MARK: - Decoding and vocabulary

    public func bytes(for id: TokenID, rendering: SpecialTokenRendering, atStart: Bool) -> [UInt8] {
        guard id >= 0 && Int(id) < vocabularySize else { return UTF8Repair.replacement }
        if rendering != .raw, let name = specialNames[id] { return rendering == .names ? name : [] }
        let bytes = rawBytes[Int(id)]
        // sentencepiece drops the space the dummy prefix added in front of the first piece.
        if atStart && addDummyPrefix && bytes.first == 0x20 { return Array(bytes.dropFirst()) }
        return bytes
    }

    public func piece(for id: TokenID) -> String? {
        guard id >= 0 && Int(id) < vocabularySize else { return nil }
        return String(decoding: pieces[Int(id)], as: UTF8.self)
    }

    /// The type of each vocabulary entry.
    public func pieceType(for id: TokenID) -> PieceType? {
        guard id >= 0 && Int(id) < vocabularySize else { return nil }
        return types[Int(id)]
    }

    private static func replacing(_ pattern: [UInt8], with replacement: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if i + pattern.count <= bytes.count && bytes[i..<(i + pattern.count)].elementsEqual(pattern) {
                out.append(contentsOf: replacement)
                i += pattern.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
