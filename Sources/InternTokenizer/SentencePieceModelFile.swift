// A small, bounds-checked reader for SentencePiece's `ModelProto` (protobuf wire format).
// It reads only the fields encoding needs: pieces (text, score, type), trainer_spec (model type,
// byte fallback, special ids) and normalizer_spec (name, charsmap, whitespace options).
// Field numbers follow sentencepiece_model.proto:
// https://github.com/google/sentencepiece/blob/v0.2.0/src/sentencepiece_model.proto
// Every read checks its bounds, so a truncated or foreign file throws instead of trapping.

public import Foundation

/// The type SentencePiece gives each vocabulary entry (`ModelProto.SentencePiece.Type`).
public enum PieceType: UInt8, Sendable {
    case normal = 1
    case unknown = 2
    case control = 3
    case userDefined = 4
    case unused = 5
    case byte = 6
}

/// The decoded contents of a SentencePiece `.model` file, as far as encoding and decoding need them.
public struct SentencePieceModelFile: Sendable {
    /// Piece text in UTF-8, indexed by id.
    public var pieces: [[UInt8]]
    public var scores: [Float]
    public var types: [PieceType]

    /// `TrainerSpec.model_type`: 1 unigram, 2 BPE, 3 word, 4 char.
    public var modelType: Int = 1
    public var byteFallback = false
    public var unknownID = 0
    public var bosID = 1
    public var eosID = 2
    public var padID = -1
    public var treatWhitespaceAsSuffix = false

    public var normalizerName = ""
    public var precompiledCharsmapSize = 0
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true

    /// A BPE model from vocabulary arrays (a GGUF `llama` tokenizer), with the given options.
    public init(
        pieces: [[UInt8]], scores: [Float], types: [PieceType], unknownID: Int, bosID: Int, eosID: Int,
        addDummyPrefix: Bool, byteFallback: Bool
    ) {
        self.pieces = pieces
        self.scores = scores
        self.types = types
        modelType = 2
        self.unknownID = unknownID
        self.bosID = bosID
        self.eosID = eosID
        self.addDummyPrefix = addDummyPrefix
        self.byteFallback = byteFallback
        removeExtraWhitespaces = false
        normalizerName = "identity"
    }

    /// Reads and validates a `.model` file.
    /// - Throws: `TokenizerError` naming the file and byte offset of the first problem.
    public init(contentsOf url: URL) throws(TokenizerError) {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        try self.init(bytes: [UInt8](data), path: url.path)
    }

    /// Parses the serialized `ModelProto` in `bytes`; `path` only labels errors.
    public init(bytes: [UInt8], path: String = "<memory>") throws(TokenizerError) {
        pieces = []
        scores = []
        types = []
        if bytes.isEmpty { throw .malformedModel(path: path, offset: 0, reason: "file is empty") }
        var reader = ProtoReader(bytes: bytes, range: 0..<bytes.count, path: path)
        while !reader.atEnd {
            let (field, wire) = try reader.readKey()
            switch (field, wire) {
            case (1, 2):
                let sub = try reader.readLengthDelimited()
                try readPiece(ProtoReader(bytes: bytes, range: sub, path: path))
            case (2, 2):
                let sub = try reader.readLengthDelimited()
                try readTrainerSpec(ProtoReader(bytes: bytes, range: sub, path: path))
            case (3, 2):
                let sub = try reader.readLengthDelimited()
                try readNormalizerSpec(ProtoReader(bytes: bytes, range: sub, path: path))
            default:
                try reader.skip(wireType: wire)
            }
        }
        if pieces.isEmpty {
            throw .malformedModel(path: path, offset: 0, reason: "no pieces found (is this a SentencePiece .model file?)")
        }
        if unknownID < 0 || unknownID >= pieces.count || types[unknownID] != .unknown {
            throw .malformedModel(path: path, offset: 0, reason: "unk_id \(unknownID) does not name an UNKNOWN piece")
        }
    }

    private mutating func readPiece(_ reader: ProtoReader) throws(TokenizerError) {
        var reader = reader
        let start = reader.position
        var text: [UInt8]? = nil
        var score: Float = 0
        var type = PieceType.normal
        while !reader.atEnd {
            let (field, wire) = try reader.readKey()
            switch (field, wire) {
            case (1, 2): text = try reader.readBytes()
            case (2, 5): score = Float(bitPattern: try reader.readFixed32())
            case (3, 0):
                let raw = try reader.readVarint()
                guard raw <= 255, let t = PieceType(rawValue: UInt8(raw)) else {
                    throw reader.error("piece \(pieces.count) has unknown type \(raw)")
                }
                type = t
            default: try reader.skip(wireType: wire)
            }
        }
        guard let text, !text.isEmpty else {
            throw .malformedModel(path: reader.path, offset: start, reason: "piece \(pieces.count) has no text")
        }
        pieces.append(text)
        scores.append(score)
        types.append(type)
    }

    private mutating func readTrainerSpec(_ reader: ProtoReader) throws(TokenizerError) {
        var reader = reader
        while !reader.atEnd {
            let (field, wire) = try reader.readKey()
            switch (field, wire) {
            case (3, 0): modelType = Int(try reader.readVarint())
            case (24, 0): treatWhitespaceAsSuffix = try reader.readVarint() != 0
            case (35, 0): byteFallback = try reader.readVarint() != 0
            case (40, 0): unknownID = Int(Int32(truncatingIfNeeded: try reader.readVarint()))
            case (41, 0): bosID = Int(Int32(truncatingIfNeeded: try reader.readVarint()))
            case (42, 0): eosID = Int(Int32(truncatingIfNeeded: try reader.readVarint()))
            case (43, 0): padID = Int(Int32(truncatingIfNeeded: try reader.readVarint()))
            default: try reader.skip(wireType: wire)
            }
        }
    }

    private mutating func readNormalizerSpec(_ reader: ProtoReader) throws(TokenizerError) {
        var reader = reader
        while !reader.atEnd {
            let (field, wire) = try reader.readKey()
            switch (field, wire) {
            case (1, 2): normalizerName = String(decoding: try reader.readBytes(), as: UTF8.self)
            case (2, 2): precompiledCharsmapSize = try reader.readLengthDelimited().count
            case (3, 0): addDummyPrefix = try reader.readVarint() != 0
            case (4, 0): removeExtraWhitespaces = try reader.readVarint() != 0
            case (5, 0): escapeWhitespaces = try reader.readVarint() != 0
            default: try reader.skip(wireType: wire)
            }
        }
    }
}

/// Protobuf wire-format cursor over a sub-range of a byte array.
struct ProtoReader {
    let bytes: [UInt8]
    let end: Int
    let path: String
    private(set) var position: Int

    init(bytes: [UInt8], range: Range<Int>, path: String) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
        self.path = path
    }

    var atEnd: Bool { position >= end }

    func error(_ reason: String) -> TokenizerError {
        .malformedModel(path: path, offset: position, reason: reason)
    }

    mutating func readVarint() throws(TokenizerError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw error("truncated varint") }
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift >= 64 { throw error("varint longer than 10 bytes") }
        }
    }

    mutating func readKey() throws(TokenizerError) -> (field: Int, wireType: Int) {
        let key = try readVarint()
        let field = Int(key >> 3)
        let wire = Int(key & 7)
        guard field > 0, wire != 6, wire != 7 else { throw error("invalid field key \(key)") }
        return (field, wire)
    }

    mutating func readFixed32() throws(TokenizerError) -> UInt32 {
        guard end - position >= 4 else { throw error("truncated fixed32") }
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
        position += 4
        return value
    }

    mutating func readLengthDelimited() throws(TokenizerError) -> Range<Int> {
        let length = try readVarint()
        guard length <= UInt64(end - position) else {
            throw error("length \(length) runs past the end of its message (\(end - position) bytes left): file truncated?")
        }
        let range = position..<(position + Int(length))
        position = range.upperBound
        return range
    }

    mutating func readBytes() throws(TokenizerError) -> [UInt8] {
        Array(bytes[try readLengthDelimited()])
    }

    mutating func skip(wireType: Int) throws(TokenizerError) {
        switch wireType {
        case 0: _ = try readVarint()
        case 1:
            guard end - position >= 8 else { throw error("truncated fixed64") }
            position += 8
        case 2: _ = try readLengthDelimited()
        case 5:
            guard end - position >= 4 else { throw error("truncated fixed32") }
            position += 4
        default: throw error("unsupported wire type \(wireType) (groups are not used by SentencePiece)")
        }
    }
}
