// The tokenizer protocol every model family implements, and the special-token table that sits on top
// of the raw vocabulary (the HF `added_tokens_decoder`). Encoding is split in two modes on purpose:
// plain mode treats `<|im_end|>` as ordinary text, so untrusted content can never inject a control token.

public typealias TokenID = Int32

/// How `decode` renders special tokens (`<s>`, `<|im_end|>`, …).
public enum SpecialTokenRendering: Sendable {
    /// Exactly as `sentencepiece` decodes: control pieces vanish, `<unk>` is " ⁇ ", user-defined pieces
    /// show their raw piece text (`[UNUSED_TOKEN_145]`).
    case raw
    /// Special tokens show their names (`<s>`, `<|im_end|>`), as a model's prompt is written.
    case names
    /// Special tokens are dropped (HF `skip_special_tokens=True`).
    case skip
}

/// A named special token: one id, matched whole in special mode.
public struct SpecialToken: Sendable, Hashable {
    public var name: String
    public var id: TokenID
    public init(name: String, id: TokenID) {
        self.name = name
        self.id = id
    }
}

/// A tokenizer: text to ids and back, with special tokens kept apart from ordinary text.
public protocol Tokenizer: Sendable {
    var vocabularySize: Int { get }
    var bosTokenID: TokenID? { get }
    var eosTokenID: TokenID? { get }
    var specialTokens: [SpecialToken] { get }

    /// Encodes `text`. With `parseSpecialTokens`, special-token names in the text become their ids
    /// (leftmost-longest, no whitespace stripped) and the text between them is encoded plainly.
    func encode(_ text: String, addBOS: Bool, parseSpecialTokens: Bool) -> [TokenID]

    /// The UTF-8 bytes token `id` contributes to decoded text (possibly a partial character).
    func bytes(for id: TokenID, rendering: SpecialTokenRendering, atStart: Bool) -> [UInt8]

    /// The vocabulary entry of `id`, as the model file spells it (`▁hello`, `<0x0A>`).
    func piece(for id: TokenID) -> String?
}

extension Tokenizer {
    public func encode(_ text: String) -> [TokenID] {
        encode(text, addBOS: false, parseSpecialTokens: false)
    }

    /// The id of a special token by name (`<|im_end|>`), if this tokenizer has it.
    public func specialTokenID(_ name: String) -> TokenID? {
        specialTokens.first { $0.name == name }?.id
    }

    /// The piece of `id` for display: a special token's name (`<|im_end|>`), else the vocabulary entry.
    public func displayPiece(for id: TokenID) -> String {
        specialTokens.first { $0.id == id }?.name ?? piece(for: id) ?? "<invalid id \(id)>"
    }

    /// Decodes ids to text; byte-fallback bytes are reassembled and invalid UTF-8 becomes U+FFFD per byte,
    /// as `sentencepiece` does.
    /// - Throws: `TokenizerError.idOutOfRange` for an id outside the vocabulary.
    public func decode(_ ids: [TokenID], rendering: SpecialTokenRendering = .raw) throws(TokenizerError) -> String {
        var bytes: [UInt8] = []
        for (i, id) in ids.enumerated() {
            guard id >= 0 && Int(id) < vocabularySize else {
                throw .idOutOfRange(id: Int(id), vocabularySize: vocabularySize)
            }
            bytes.append(contentsOf: self.bytes(for: id, rendering: rendering, atStart: i == 0))
        }
        return UTF8Repair.string(from: bytes)
    }
}

/// UTF-8 validation with sentencepiece's repair rule: each byte that does not start a valid
/// sequence becomes one U+FFFD.
public enum UTF8Repair {
    static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// Length of the valid UTF-8 sequence at `i`, 0 if invalid, or -1 if it is a valid but incomplete prefix.
    static func sequenceLength(_ b: [UInt8], at i: Int) -> Int {
        let b0 = b[i]
        if b0 < 0x80 { return 1 }
        let need: Int
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: need = 2
        case 0xE0: need = 3; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 3
        case 0xED: need = 3; hi = 0x9F
        case 0xF0: need = 4; lo = 0x90
        case 0xF1...0xF3: need = 4
        case 0xF4: need = 4; hi = 0x8F
        default: return 0
        }
        for k in 1..<need {
            if i + k >= b.count { return -1 }
            let c = b[i + k]
            let (l, h): (UInt8, UInt8) = k == 1 ? (lo, hi) : (0x80, 0xBF)
            if c < l || c > h { return 0 }
        }
        return need
    }

    public static func string(from bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let n = sequenceLength(bytes, at: i)
            if n > 0 {
                out.append(contentsOf: bytes[i..<(i + n)])
                i += n
            } else {
                out.append(contentsOf: replacement)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A 64-bit FNV-1a checksum of an id sequence (each id as 4 little-endian bytes), so that ids from
/// another tool (benchmark scripts, long fixtures) can be compared by one number.
public struct TokenIDChecksum: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func combine(_ ids: some Sequence<TokenID>) {
        for id in ids {
            let v = UInt32(bitPattern: id)
            for shift: UInt32 in [0, 8, 16, 24] { value = (value ^ UInt64((v >> shift) & 0xFF)) &* 0x100_0000_01b3 }
        }
    }

    /// Sixteen lowercase hex digits.
    public var hex: String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
