// Turns a growing sequence of ids into text deltas for streaming generation. Byte-fallback tokens can
// split one character over several ids (a CJK character is three `<0xXX>` tokens), so an incomplete
// UTF-8 tail is held back until it completes; a sequence that can no longer complete becomes U+FFFD,
// exactly as `decode` would render it. The concatenated deltas always equal `decode(allIDs)`.

/// Incremental decoder that never emits a broken UTF-8 character.
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: any Tokenizer
    private let rendering: SpecialTokenRendering
    private var pending: [UInt8] = []
    private var tokenCount = 0

    public init(tokenizer: any Tokenizer, rendering: SpecialTokenRendering = .skip) {
        self.tokenizer = tokenizer
        self.rendering = rendering
    }

    /// Adds one token and returns the text that became complete (often empty, sometimes several characters).
    public mutating func append(_ id: TokenID) -> String {
        pending.append(contentsOf: tokenizer.bytes(for: id, rendering: rendering, atStart: tokenCount == 0))
        tokenCount += 1
        return drain(final: false)
    }

    /// Flushes what is held back at the end of the stream (an incomplete tail becomes U+FFFD).
    public mutating func finish() -> String {
        drain(final: true)
    }

    private mutating func drain(final: Bool) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < pending.count {
            let n = UTF8Repair.sequenceLength(pending, at: i)
            if n > 0 {
                out.append(contentsOf: pending[i..<(i + n)])
                i += n
            } else if n < 0 && !final {
                break
            } else {
                out.append(contentsOf: UTF8Repair.replacement)
                i += 1
            }
        }
        pending.removeFirst(i)
        return String(decoding: out, as: UTF8.self)
    }
}
