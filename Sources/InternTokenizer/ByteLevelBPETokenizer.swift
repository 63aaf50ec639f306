// Byte-level BPE (GPT-2 style; GGUF `tokenizer.ggml.model = gpt2`), id-for-id as llama.cpp tokenizes:
// special tokens are cut out first (llama-vocab.cpp `tokenizer_st_partition`), the rest is split into
// words by the pre-tokenizer, each word's UTF-8 bytes are mapped to GPT-2's printable characters, and
// merges are applied by rank (lowest first, ties to the leftmost pair), as `llm_tokenizer_bpe_session`.

/// A byte-level BPE tokenizer built from a vocabulary and its merges list.
public final class ByteLevelBPETokenizer: Tokenizer {
    public let vocabularySize: Int
    public let bosTokenID: TokenID?
    public let eosTokenID: TokenID?
    public let specialTokens: [SpecialToken]
    /// Whether `encode(_:addBOS:…)` with `addBOS` really adds it (GGUF `tokenizer.ggml.add_bos_token`).
    public let addsBOS: Bool

    private let tokens: [[UInt8]]
    private let types: [PieceType]
    private let preTokenizer: ByteLevelPreTokenizer
    private let rules: MergeRules
    private let textToID: [[UInt8]: Int32]
    /// Symbol of each byte's mapped character (a token id, or a virtual id beyond the vocabulary).
    private let byteSymbols: [Int32]
    /// Special tokens, longest first, as llama.cpp's `cache_special_tokens` orders them.
    private let partitionTokens: [(bytes: [UInt8], id: TokenID, isControl: Bool)]
    /// Decoded bytes of each id (mapped characters turned back into bytes).
    private let decodedBytes: [[UInt8]]

    /// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the others to U+0100 upwards.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = Dictionary(uniqueKeysWithValues: byteToScalar.enumerated().map { ($1, UInt8($0)) })

    /// - Parameters:
    ///   - tokens: token texts in GPT-2's mapped form (`Ġhello`), indexed by id.
    ///   - types: SentencePiece/GGUF token types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
    ///   - merges: `"left right"` in rank order.
    ///   - preTokenizer: the `tokenizer.ggml.pre` name.
    public init(
        tokens: [[UInt8]], types: [Int32], merges: [[UInt8]], preTokenizer name: String, bosTokenID: TokenID?,
        eosTokenID: TokenID?, addBOS: Bool, source: String = "<memory>"
    ) throws(TokenizerError) {
        guard let pre = ByteLevelPreTokenizer(name: name) else {
            throw .unsupportedModel(
                path: source,
                reason: "pre-tokenizer '\(name)'; supported: \(ByteLevelPreTokenizer.supportedNames.joined(separator: ", "))")
        }
        guard types.count == tokens.count else {
            throw .malformedModel(path: source, offset: 0, reason: "\(tokens.count) tokens but \(types.count) token types")
        }
        preTokenizer = pre
        vocabularySize = tokens.count
        self.tokens = tokens
        let pieceTypes = types.map { PieceType(rawValue: UInt8(clamping: $0)) ?? .normal }
        self.types = pieceTypes
        func valid(_ id: TokenID?) -> TokenID? { id.flatMap { $0 >= 0 && Int($0) < tokens.count ? $0 : nil } }
        self.bosTokenID = valid(bosTokenID)
        self.eosTokenID = valid(eosTokenID)
        addsBOS = addBOS

        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        textToID = ids

        // Symbols: token ids, plus virtual ids for strings that merges name but the vocabulary lacks.
        var virtual: [[UInt8]: Int32] = [:]
        func symbol(_ text: [UInt8]) -> Int32 {
            if let id = ids[text] { return id }
            if let id = virtual[text] { return id }
            let id = Int32(tokens.count + virtual.count)
            virtual[text] = id
            return id
        }
        byteSymbols = Self.byteToScalar.map { symbol(Array(String(Unicode.Scalar($0)!).utf8)) }
        var mergeRules = MergeRules()
        for (rank, merge) in merges.enumerated() {
            // llama.cpp splits at the first space after the first byte.
            guard let space = merge.dropFirst().firstIndex(of: 0x20) else {
                throw .malformedModel(path: source, offset: rank, reason: "merge \(rank) '\(String(decoding: merge, as: UTF8.self))' has no space")
            }
            let left = Array(merge[..<space])
            let right = Array(merge[(space + 1)...])
            mergeRules.add(left: symbol(left), right: symbol(right), result: symbol(left + right), priority: -Float(rank))
        }
        rules = mergeRules

        let special = tokens.indices.filter { [.control, .userDefined, .unknown].contains(pieceTypes[$0]) && !tokens[$0].isEmpty }
        specialTokens = special.map { SpecialToken(name: String(decoding: tokens[$0], as: UTF8.self), id: TokenID($0)) }
        partitionTokens = special.map { (tokens[$0], TokenID($0), pieceTypes[$0] != .userDefined) }
            .sorted { $0.bytes.count > $1.bytes.count }

        decodedBytes = tokens.indices.map { i in
            let text = tokens[i]
            switch PieceType(rawValue: UInt8(clamping: types[i])) ?? .normal {
            case .normal, .unused, .byte:
                // Mapped characters back to bytes; a character outside the map is kept as UTF-8.
                var out: [UInt8] = []
                for scalar in String(decoding: text, as: UTF8.self).unicodeScalars {
                    if let b = Self.scalarToByte[scalar.value] { out.append(b) } else { out += Array(String(scalar).utf8) }
                }
                return out
            case .userDefined, .control, .unknown:
                return text
            }
        }
    }

    // MARK: - Encoding

    public func encode(_ text: String, addBOS: Bool = false, parseSpecialTokens: Bool = false) -> [TokenID] {
        var output: [TokenID] = []
        if addBOS && addsBOS, let bosTokenID { output.append(bosTokenID) }
        let bytes = Array(text.utf8)
        for fragment in partition(bytes, parseSpecial: parseSpecialTokens) {
            switch fragment {
            case .token(let id): output.append(id)
            case .text(let range): encodeText(bytes[range], into: &output)
            }
        }
        return output
    }

    private enum Fragment {
        case token(TokenID)
        case text(Range<Int>)
    }

    /// llama.cpp's partition: for each special token, longest first, split every text fragment at all its occurrences.
    private func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = bytes.isEmpty ? [] : [.text(0..<bytes.count)]
        for token in partitionTokens where parseSpecial || !token.isControl {
            var next: [Fragment] = []
            for fragment in fragments {
                guard case .text(let range) = fragment else {
                    next.append(fragment)
                    continue
                }
                var start = range.lowerBound
                var i = range.lowerBound
                while i + token.bytes.count <= range.upperBound {
                    if bytes[i] == token.bytes[0] && bytes[i..<(i + token.bytes.count)].elementsEqual(token.bytes) {
                        if i > start { next.append(.text(start..<i)) }
                        next.append(.token(token.id))
                        i += token.bytes.count
                        start = i
                    } else {
                        i += 1
                    }
                }
                if start < range.upperBound { next.append(.text(start..<range.upperBound)) }
            }
            fragments = next
        }
        return fragments
    }

    private func encodeText(_ utf8: ArraySlice<UInt8>, into output: inout [TokenID]) {
        // Scalars with their byte offsets, for the pre-tokenizer.
        var scalars: [UInt32] = []
        var offsets: [Int] = []
        scalars.reserveCapacity(utf8.count)
        var i = utf8.startIndex
        while i < utf8.endIndex {
            let (scalar, length) = UTF8Scalar.decode(utf8, at: i)
            scalars.append(scalar)
            offsets.append(i)
            i += length
        }
        offsets.append(utf8.endIndex)
        var scratch = MergeScratch()
        for word in preTokenizer.split(scalars) {
            let bytes = utf8[offsets[word.lowerBound]..<offsets[word.upperBound]]
            if preTokenizer.ignoreMerges, let id = textToID[mapped(bytes)] {
                output.append(id)
                continue
            }
            scratch.reset()
            for b in bytes.indices { scratch.append(symbol: byteSymbols[Int(bytes[b])], start: b, end: b + 1, frozen: false) }
            scratch.runMerges(rules)
            var index = 0
            while index >= 0 {
                let symbol = scratch.symbol[index]
                if Int(symbol) < vocabularySize {
                    output.append(symbol)
                } else {
                    // Not a token: llama.cpp keeps the single-byte pieces of its mapped text that are tokens.
                    for b in mapped(bytes[scratch.start[index]..<scratch.end[index]]) {
                        if let id = textToID[[b]] { output.append(id) }
                    }
                }
                index = scratch.next[index]
            }
        }
    }

    private func mapped(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out += Array(String(Unicode.Scalar(Self.byteToScalar[Int(b)])!).utf8) }
        return out
    }

    // MARK: - Decoding

    public func bytes(for id: TokenID, rendering: SpecialTokenRendering, atStart: Bool) -> [UInt8] {
        guard id >= 0 && Int(id) < vocabularySize else { return UTF8Repair.replacement }
        switch types[Int(id)] {
        case .control, .unknown:
            return rendering == .names ? tokens[Int(id)] : []
        case .userDefined:
            return rendering == .skip ? [] : tokens[Int(id)]
        default:
            return decodedBytes[Int(id)]
        }
    }

    public func piece(for id: TokenID) -> String? {
        guard id >= 0 && Int(id) < vocabularySize else { return nil }
        return String(decoding: tokens[Int(id)], as: UTF8.self)
    }
}
