// Consuming the scheduler streams of a request's `n` choices: merged into one sequence of (choice,
// event) in arrival order, with the latency metrics recorded on the way. Leaving early (the client went
// away, the handler threw) cancels the child tasks, which ends the scheduler streams and frees the slots.
import InternChat
import InternEngine
import InternTokenizer

extension InferenceService {
    /// Calls `handle` for every event of every choice, in arrival order; returns when all are done.
    func consume(
        _ streams: [AsyncThrowingStream<SchedulerEvent, any Error>], arrival: ContinuousClock.Instant,
        _ handle: (Int, SchedulerEvent) async throws -> Void
    ) async throws {
        let (merged, continuation) = AsyncStream<(Int, Result<SchedulerEvent, any Error>)>.makeStream()
        let metrics = self.metrics
        var completed = false
        defer { if !completed { metrics.cancelledRequests.increment() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, stream) in streams.enumerated() {
                group.addTask {
                    var last: ContinuousClock.Instant?
                    do {
                        for try await event in stream {
                            if case .token(_?, _, _) = event {
                                let now = ContinuousClock.now
                                if let last { metrics.interTokenLatency.record(now - last) } else { metrics.timeToFirstToken.record(now - arrival) }
                                last = now
                                metrics.completionTokens.increment()
                            }
                            continuation.yield((index, .success(event)))
                        }
                    } catch {
                        continuation.yield((index, .failure(error)))
                    }
                }
            }
            var open = streams.count
            for await (index, result) in merged {
                switch result {
                case .success(let event):
                    try await handle(index, event)
                    if case .done = event { open -= 1 }
                case .failure(let error):
                    throw OpenAIError.server("generation failed: \(error)")
                }
                if open == 0 { break }
            }
            continuation.finish()
            group.cancelAll()
        }
        completed = true
    }
}

/// Turns one choice's text into OpenAI content and tool calls: with tools declared, the InternLM2
/// `<|action_start|><|plugin|>` output is parsed into calls; otherwise text passes through.
struct ChatChoiceOutput {
    private var parser: ChatOutputParser?
    private let callPrefix: String
    private(set) var content = ""
    private(set) var toolCalls: [ToolCallDTO] = []

    init(parsesToolCalls: Bool, forcedPrefix: String, callPrefix: String) {
        self.callPrefix = callPrefix
        if parsesToolCalls {
            var parser = ChatOutputParser()
            _ = parser.append(forcedPrefix)  // only opens the action: nothing to emit yet
            self.parser = parser
        }
    }

    /// New content and new complete tool calls (with their index in the message).
    mutating func append(_ text: String) -> (String, [ToolCallDTO]) {
        guard var parser else {
            content += text
            return (text, [])
        }
        let events = parser.append(text)
        self.parser = parser
        return apply(events)
    }

    mutating func finish() -> (String, [ToolCallDTO]) {
        guard var parser else { return ("", []) }
        let events = parser.finish()
        self.parser = parser
        return apply(events)
    }

    private mutating func apply(_ events: [ChatOutputEvent]) -> (String, [ToolCallDTO]) {
        var text = ""
        var calls: [ToolCallDTO] = []
        for event in events {
            switch event {
            case .text(let t): text += t
            case .action(.plugin(let call)):
                calls.append(
                    ToolCallDTO(
                        index: toolCalls.count + calls.count, id: "\(callPrefix)\(toolCalls.count + calls.count)",
                        type: "function", function: .init(name: call.name, arguments: call.parameters.pythonJSON)))
            case .action(.interpreter(let code)):
                // The code interpreter is exposed as a function named "python" taking {"code": ...}.
                let arguments = JSONValue.object([("code", .string(code))]).pythonJSON
                calls.append(
                    ToolCallDTO(
                        index: toolCalls.count + calls.count, id: "\(callPrefix)\(toolCalls.count + calls.count)",
                        type: "function", function: .init(name: "python", arguments: arguments)))
            case .malformedAction(let raw, _):
                // Never dropped: a call the parser cannot read is returned as text.
                text += "<|action_start|><|plugin|>\n" + raw
            }
        }
        content += text
        toolCalls += calls
        return (text, calls)
    }
}

extension TokenLogprob {
    func chatEntry(_ tokenizer: any Tokenizer) -> ChatLogprobs.Entry {
        func bytes(_ id: Int32) -> [UInt8] { tokenizer.bytes(for: id, rendering: .names, atStart: false) }
        func text(_ id: Int32) -> String { UTF8Repair.string(from: bytes(id)) }
        return ChatLogprobs.Entry(
            token: text(id), logprob: logprob, bytes: bytes(id),
            topLogprobs: top.map { ChatLogprobs.Top(token: text($0.id), logprob: $0.logprob, bytes: bytes($0.id)) })
    }
}
