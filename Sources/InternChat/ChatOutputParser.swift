// Incremental parser for InternLM2 assistant output: plain text interleaved with
// `<|action_start|><|plugin|>\n{json}<|action_end|>` tool calls and
// `<|action_start|><|interpreter|>\n{code}<|action_end|>` code. Input arrives in arbitrary chunks
// (even split inside a UTF-8 character or a tag); text is released as soon as it cannot be the start
// of a tag. A call whose JSON is broken is reported with the raw text and the reason, never dropped.
// Parsing follows LMDeploy's InternLM2 tool parser (`parameters`, or `arguments` as a synonym).

import InternTokenizer

/// What the parser recognises in the stream.
public enum ChatOutputEvent: Sendable, Equatable {
    case text(String)
    case action(ChatAction)
    /// A plugin call whose body is not a valid call: the raw body and what is wrong.
    case malformedAction(raw: String, reason: String)
}

/// Streaming parser of assistant output, the inverse of `InternLM2ChatFormat.segments(for: ChatAction)`.
public struct ChatOutputParser: Sendable {
    private static let actionStart = Array("<|action_start|>".utf8)
    private static let actionEnd = Array("<|action_end|>".utf8)
    private static let targets: [(tag: [UInt8], target: ActionTarget)] = [
        (Array("<|plugin|>".utf8), .plugin), (Array("<|interpreter|>".utf8), .interpreter),
    ]

    private enum State {
        case text
        case header
        case body(ActionTarget)
    }
    private var state = State.text
    private var buffer: [UInt8] = []

    public init() {}

    /// Feeds a chunk of decoded output.
    public mutating func append(_ text: String) -> [ChatOutputEvent] {
        append(bytes: Array(text.utf8))
    }

    /// Feeds raw UTF-8 bytes; a character split across chunks is held until complete.
    public mutating func append(bytes: [UInt8]) -> [ChatOutputEvent] {
        buffer += bytes
        return process(final: false)
    }

    /// Ends the stream. An action still open is closed as if `<|action_end|>` had come (generation stops
    /// on that token, so it is often not in the text).
    public mutating func finish() -> [ChatOutputEvent] {
        process(final: true)
    }

    private mutating func process(final: Bool) -> [ChatOutputEvent] {
        var events: [ChatOutputEvent] = []
        while true {
            switch state {
            case .text:
                if let start = Self.find(Self.actionStart, in: buffer) {
                    emitText(count: start, into: &events)
                    buffer.removeFirst(Self.actionStart.count)
                    state = .header
                    continue
                }
                // Hold back a tail that may still become `<|action_start|>`, or an incomplete character.
                let keep = final ? 0 : max(Self.partialTagLength(Self.actionStart, at: buffer), Self.incompleteUTF8Tail(buffer))
                emitText(count: buffer.count - keep, into: &events)
                return events
            case .header:
                if let match = Self.targets.first(where: { buffer.starts(with: $0.tag) }) {
                    buffer.removeFirst(match.tag.count)
                    state = .body(match.target)
                    continue
                }
                let couldStillMatch = Self.targets.contains { $0.tag.starts(with: buffer) }
                if couldStillMatch && !final { return events }
                // `<|action_start|>` without a known target: read the rest as a plugin body, which then
                // fails to parse and is reported as malformed with its raw text.
                state = .body(.plugin)
                continue
            case .body(let target):
                let end = Self.find(Self.actionEnd, in: buffer)
                guard end != nil || final else { return events }
                let bodyBytes = Array(buffer[..<(end ?? buffer.count)])
                buffer.removeFirst(end.map { $0 + Self.actionEnd.count } ?? buffer.count)
                state = .text
                events.append(Self.action(target: target, body: UTF8Repair.string(from: bodyBytes)))
                if end == nil { return events }
            }
        }
    }

    private mutating func emitText(count: Int, into events: inout [ChatOutputEvent]) {
        guard count > 0 else { return }
        let text = UTF8Repair.string(from: Array(buffer[..<count]))
        buffer.removeFirst(count)
        if case .text(let previous)? = events.last {
            events[events.count - 1] = .text(previous + text)
        } else {
            events.append(.text(text))
        }
    }

    /// Builds the action from its body (the text after the target tag, up to `<|action_end|>`).
    static func action(target: ActionTarget, body: String) -> ChatOutputEvent {
        var text = Substring(body)
        if text.hasPrefix("\n") { text = text.dropFirst() }
        if target == .interpreter { return .action(.interpreter(code: String(text))) }
        let trimmed = text.trimmingWhitespace()
        let json: JSONValue
        do {
            json = try JSONValue(parsing: trimmed)
        } catch {
            return .malformedAction(raw: String(text), reason: error.description)
        }
        guard case .object = json else { return .malformedAction(raw: String(text), reason: "a tool call must be a JSON object") }
        guard let name = json["name"]?.stringValue else {
            return .malformedAction(raw: String(text), reason: "the tool call has no string field 'name'")
        }
        do {
            return .action(.plugin(ToolCall(name: name, parameters: try ChatMessage.arguments(json, path: "tool_call"))))
        } catch {
            return .malformedAction(raw: String(text), reason: error.description)
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = 0
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    /// Length of the longest suffix of `buffer` that is a proper prefix of `tag`.
    static func partialTagLength(_ tag: [UInt8], at buffer: [UInt8]) -> Int {
        for length in stride(from: min(tag.count - 1, buffer.count), to: 0, by: -1)
        where buffer[(buffer.count - length)...].elementsEqual(tag[..<length]) {
            return length
        }
        return 0
    }

    /// Bytes at the end of `buffer` that start a UTF-8 character not yet complete.
    static func incompleteUTF8Tail(_ buffer: [UInt8]) -> Int {
        var i = buffer.count - 1
        var back = 0
        while i >= 0 && back < 4 {
            let b = buffer[i]
            back += 1
            if b & 0xC0 != 0x80 {
                let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
                return need > back ? back : 0
            }
            i -= 1
        }
        return 0
    }
}

extension Substring {
    func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
