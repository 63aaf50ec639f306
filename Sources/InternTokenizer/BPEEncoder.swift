// SentencePiece BPE encoding, id-for-id equal to `sentencepiece`'s bpe_model.cc:
// https://github.com/google/sentencepiece/blob/v0.2.0/src/bpe_model.cc (Model::SampleEncode without sampling).
//
// The reference algorithm: split the normalized text into characters (user-defined pieces matched
// whole and frozen), then repeatedly merge the adjacent pair whose concatenation is a piece with the
// highest score, ties going to the leftmost pair. Unknown symbols fall back to byte pieces.
//
// Why it is faster here, yet exact:
// - Work is on UTF-8 bytes, never on Swift `String`s: String equality is canonical-equivalence
//   (NFC "é" == NFD "é"), which would silently merge pieces SentencePiece keeps apart.
// - Pair lookup is by (left symbol id, right symbol id) in an open-addressing table built once from
//   the vocabulary, instead of hashing the concatenated bytes for every candidate pair.
// - The text is cut into independent chunks where two adjacent characters never occur next to each
//   other inside any piece: no merge (and no user-defined match) can span such a cut, so each chunk
//   can be encoded alone and repeated chunks (words) are encoded once per call and then copied.

import Foundation

/// Immutable, thread-safe BPE encoder over one vocabulary.
final class BPEEncoder: Sendable {
    let vocabularySize: Int
    /// Whether an id may be emitted as is (NORMAL, USER_DEFINED and UNUSED pieces: sentencepiece's `pieces_`).
    private let isEmittable: [Bool]
    /// Symbol id for each Unicode scalar below `directCharLimit`: a piece id, a virtual id
    /// (>= vocabularySize: a character that only occurs inside longer pieces), or -1 (never in a piece).
    private let directCharSymbols: [Int32]
    private let otherCharSymbols: [UInt32: Int32]
    private static let directCharLimit: UInt32 = 0x30000
    /// (left symbol, right symbol) -> merged piece, by the merged piece's score.
    private let rules: MergeRules
    /// Adjacent scalar pairs that occur inside at least one piece.
    private let innerBigrams: PairTable
    /// User-defined pieces by first byte, longest first; they are matched whole and never merged.
    private let userDefinedByFirstByte: [[(bytes: [UInt8], id: Int32)]]
    /// Piece id of `<0xXX>` for each byte value, when byte fallback is on.
    private let byteFallbackIDs: [Int32]?
    private let unknownID: Int32

    init(pieces: [[UInt8]], scores: [Float], types: [PieceType], unknownID: Int, byteFallback: Bool) {
        vocabularySize = pieces.count
        self.unknownID = Int32(unknownID)
        let emittable = types.map { $0 == .normal || $0 == .userDefined || $0 == .unused }
        isEmittable = emittable

        var pieceIDs: [[UInt8]: Int32] = [:]
        pieceIDs.reserveCapacity(pieces.count)
        for (id, piece) in pieces.enumerated() where emittable[id] {
            // The first piece with a given text wins, as in sentencepiece's InsertOrDie (duplicates are rejected there).
            if pieceIDs[piece] == nil { pieceIDs[piece] = Int32(id) }
        }

        // Symbols: every piece, plus a virtual id for each scalar seen inside a piece but not a piece itself.
        var direct = [Int32](repeating: -1, count: Int(Self.directCharLimit))
        var other: [UInt32: Int32] = [:]
        var nextVirtual = Int32(pieces.count)
        var bigrams = PairTable()
        func symbol(forScalar scalar: UInt32, bytes: ArraySlice<UInt8>) -> Int32 {
            let existing = scalar < Self.directCharLimit ? direct[Int(scalar)] : (other[scalar] ?? -1)
            if existing >= 0 { return existing }
            let id =
                pieceIDs[Array(bytes)]
                ?? {
                    defer { nextVirtual += 1 }; return nextVirtual
                }()
            if scalar < Self.directCharLimit { direct[Int(scalar)] = id } else { other[scalar] = id }
            return id
        }
        var charStarts: [Int] = []
        for (id, piece) in pieces.enumerated() where emittable[id] {
            charStarts.removeAll(keepingCapacity: true)
            var previous: UInt32? = nil
            var i = 0
            while i < piece.count {
                let (scalar, length) = UTF8Scalar.decode(piece, at: i)
                charStarts.append(i)
                _ = symbol(forScalar: scalar, bytes: piece[i..<(i + length)])
                if let previous { bigrams.insert(PairTable.key(previous, scalar), value: 1) }
                previous = scalar
                i += length
            }
        }
        // Merge rules: every split of a piece into two strings that are both symbols.
        var mergeRules = MergeRules()
        for (id, piece) in pieces.enumerated() where emittable[id] {
            var starts: [Int] = []
            var i = 0
            while i < piece.count {
                starts.append(i)
                i += UTF8Scalar.decode(piece, at: i).length
            }
            guard starts.count > 1 else { continue }
            for split in starts.dropFirst() {
                guard let left = Self.symbolID(of: piece[..<split], pieceIDs: pieceIDs, direct: direct, other: other),
                    let right = Self.symbolID(of: piece[split...], pieceIDs: pieceIDs, direct: direct, other: other)
                else { continue }
                mergeRules.add(left: left, right: right, result: Int32(id), priority: scores[id])
            }
        }
        directCharSymbols = direct
        otherCharSymbols = other
        rules = mergeRules
        innerBigrams = bigrams

        var userDefined = [[(bytes: [UInt8], id: Int32)]](repeating: [], count: 256)
        for (id, piece) in pieces.enumerated() where types[id] == .userDefined {
            userDefined[Int(piece[0])].append((piece, Int32(id)))
        }
        for b in 0..<256 { userDefined[b].sort { $0.bytes.count > $1.bytes.count } }
        userDefinedByFirstByte = userDefined

        if byteFallback {
            var ids = [Int32](repeating: Int32(unknownID), count: 256)
            for (id, piece) in pieces.enumerated() where types[id] == .byte {
                // Byte pieces are spelled "<0xXX>".
                if piece.count == 6, let value = UInt8(String(decoding: piece[3..<5], as: UTF8.self), radix: 16) {
                    ids[Int(value)] = Int32(id)
                }
            }
            byteFallbackIDs = ids
        } else {
            byteFallbackIDs = nil
        }
    }

    /// The symbol a string would be during encoding: a piece, or a single (possibly virtual) character.
    private static func symbolID(
        of bytes: ArraySlice<UInt8>, pieceIDs: [[UInt8]: Int32], direct: [Int32], other: [UInt32: Int32]
    ) -> Int32? {
        if let id = pieceIDs[Array(bytes)] { return id }
        let (scalar, length) = UTF8Scalar.decode(bytes, at: bytes.startIndex)
        guard length == bytes.count else { return nil }
        let id = scalar < directCharLimit ? direct[Int(scalar)] : (other[scalar] ?? -1)
        return id >= 0 ? id : nil
    }

    @inline(__always)
    private func charSymbol(_ scalar: UInt32) -> Int32 {
        scalar < Self.directCharLimit ? directCharSymbols[Int(scalar)] : (otherCharSymbols[scalar] ?? -1)
    }

    // MARK: - Encoding

    /// Encodes already-normalized UTF-8 bytes, appending ids to `output`.
    func encode(normalized text: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        guard !text.isEmpty else { return }
        var scratch = MergeScratch()
        // Chunk cache: chunk bytes (by position in `text`) -> ids already written to `output`.
        var cache = ChunkCache(text: text)
        var chunkStart = 0
        var previousScalar: UInt32 = 0
        var position = 0
        while position < text.count {
            let (scalar, length) = UTF8Scalar.decode(text, at: position)
            if position > chunkStart && innerBigrams.find(PairTable.key(previousScalar, scalar)) == nil {
                encodeChunk(text, chunkStart..<position, &output, &scratch, &cache)
                chunkStart = position
            }
            previousScalar = scalar
            position += length
        }
        encodeChunk(text, chunkStart..<text.count, &output, &scratch, &cache)
    }

    private func encodeChunk(
        _ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ output: inout [Int32],
        _ scratch: inout MergeScratch, _ cache: inout ChunkCache
    ) {
        if let cached = cache.lookup(range) {
            // Element by element: appending `output[cached]` would keep a slice alive and copy the whole array.
            for i in cached { output.append(output[i]) }
            return
        }
        let outputStart = output.count
        scratch.reset()
        // Initial symbols: user-defined pieces matched whole (longest first), else one character.
        var position = range.lowerBound
        while position < range.upperBound {
            var matched = false
            for candidate in userDefinedByFirstByte[Int(text[position])]
            where candidate.bytes.count <= range.upperBound - position {
                if candidate.bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress!, text.baseAddress! + position, $0.count) == 0 }) {
                    scratch.append(symbol: candidate.id, start: position, end: position + candidate.bytes.count, frozen: true)
                    position += candidate.bytes.count
                    matched = true
                    break
                }
            }
            if matched { continue }
            let (scalar, length) = UTF8Scalar.decode(text, at: position)
            scratch.append(symbol: charSymbol(scalar), start: position, end: position + length, frozen: false)
            position += length
        }
        scratch.runMerges(rules)
        var index = 0
        while index >= 0 {
            let symbol = scratch.symbol[index]
            if symbol >= 0 && Int(symbol) < vocabularySize && isEmittable[Int(symbol)] {
                output.append(symbol)
            } else if let byteFallbackIDs {
                for p in scratch.start[index]..<scratch.end[index] { output.append(byteFallbackIDs[Int(text[p])]) }
            } else {
                output.append(unknownID)
            }
            index = scratch.next[index]
        }
        cache.store(range, ids: outputStart..<output.count)
    }
}

/// Remembers where each distinct chunk's ids were first written, keyed by the chunk's bytes.
private struct ChunkCache {
    private let text: UnsafeBufferPointer<UInt8>
    private var slots: [Slot]
    private var used = 0
    private struct Slot {
        var hash: UInt64 = 0
        var chunkStart: Int32 = -1
        var chunkLength: Int32 = 0
        var idsStart: Int32 = 0
        var idsCount: Int32 = 0
    }
    /// Chunks longer than this are rare and not worth hashing.
    private static let maxChunkBytes = 64

    init(text: UnsafeBufferPointer<UInt8>) {
        self.text = text
        slots = [Slot](repeating: Slot(), count: text.count > 256 ? 1024 : 0)
    }

    private func hash(_ range: Range<Int>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in range {
            h = (h ^ UInt64(text[i])) &* 0x100_0000_01b3
        }
        return h | 1
    }

    func lookup(_ range: Range<Int>) -> Range<Int>? {
        guard !slots.isEmpty, range.count <= Self.maxChunkBytes else { return nil }
        let h = hash(range)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h >> 7) & mask
        while slots[i].chunkStart >= 0 {
            let slot = slots[i]
            if slot.hash == h && Int(slot.chunkLength) == range.count
                && memcmp(text.baseAddress! + Int(slot.chunkStart), text.baseAddress! + range.lowerBound, range.count) == 0
            {
                return Int(slot.idsStart)..<Int(slot.idsStart + slot.idsCount)
            }
            i = (i + 1) & mask
        }
        return nil
    }

    mutating func store(_ range: Range<Int>, ids: Range<Int>) {
        guard !slots.isEmpty, range.count <= Self.maxChunkBytes, ids.upperBound < Int(Int32.max) else { return }
        if (used + 1) * 2 > slots.count { grow() }
        insert(
            Slot(
                hash: hash(range), chunkStart: Int32(range.lowerBound), chunkLength: Int32(range.count),
                idsStart: Int32(ids.lowerBound), idsCount: Int32(ids.count)))
    }

    private mutating func insert(_ slot: Slot) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: slot.hash >> 7) & mask
        while slots[i].chunkStart >= 0 { i = (i + 1) & mask }
        slots[i] = slot
        used += 1
    }

    private mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(), count: old.count * 2)
        used = 0
        for slot in old where slot.chunkStart >= 0 { insert(slot) }
    }
}

/// UTF-8 scalar decoding for text already known to be valid UTF-8 (from a Swift String or a
/// vocabulary piece). A stray byte decodes as itself with length 1, so loops always advance.
enum UTF8Scalar {
    @inline(__always)
    static func decode<C: Collection<UInt8>>(_ bytes: C, at i: C.Index) -> (scalar: UInt32, length: Int) where C.Index == Int {
        let b0 = UInt32(bytes[i])
        let available = bytes.endIndex - i
        if b0 < 0x80 { return (b0, 1) }
        if b0 >= 0xF0 && available >= 4 {
            return (
                (b0 & 0x07) << 18 | (UInt32(bytes[i + 1]) & 0x3F) << 12 | (UInt32(bytes[i + 2]) & 0x3F) << 6
                    | (UInt32(bytes[i + 3]) & 0x3F), 4
            )
        }
        if b0 >= 0xE0 && available >= 3 {
            return ((b0 & 0x0F) << 12 | (UInt32(bytes[i + 1]) & 0x3F) << 6 | (UInt32(bytes[i + 2]) & 0x3F), 3)
        }
        if b0 >= 0xC0 && available >= 2 { return ((b0 & 0x1F) << 6 | (UInt32(bytes[i + 1]) & 0x3F), 2) }
        return (b0, 1)
    }
}
