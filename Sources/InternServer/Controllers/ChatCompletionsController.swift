// POST /v1/chat/completions: a chat.completion, or with `stream` a server-sent-event stream of
// chat.completion.chunk objects (the first delta of each choice carries the role, the last chunk of each
// choice carries finish_reason, then a usage chunk when `stream_options.include_usage`, then
// `data: [DONE]`), as OpenAI streams (Hummingbird example `server-sent-events` writes the same way).
import Foundation
public import Hummingbird
import InternChat
import InternEngine
import NIOCore

/// The chat completions endpoint.
public struct ChatCompletionsController<Context: RequestContext>: Sendable {
    let service: InferenceService
    let maxBodyBytes: Int

    public var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("chat/completions", use: create)
        return routes
    }

    @Sendable func create(request: Request, context: Context) async throws -> Response {
        let arrival = ContinuousClock.now
        let json = try await readJSON(request, limit: maxBodyBytes)
        let chat = try ChatCompletionRequest(json: json)
        let prepared = try service.prepare(chat: chat)
        let streams = try service.submit(prepared)
        let id = "chatcmpl-\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        let header = ResponseHeader(id: id, created: Int(Date().timeIntervalSince1970), model: service.modelName)
        if chat.sampling.stream {
            return eventStream { write in
                try await streamChat(
                    streams, prepared: prepared, includeUsage: chat.sampling.includeUsage, header: header,
                    arrival: arrival, write: write)
            }
        }
        return try jsonResponse(try await completeChat(streams, prepared: prepared, header: header, arrival: arrival))
    }

    private func completeChat(
        _ streams: [AsyncThrowingStream<SchedulerEvent, any Error>], prepared: InferenceService.Prepared, header: ResponseHeader,
        arrival: ContinuousClock.Instant
    ) async throws -> ChatCompletion {
        var outputs = (0..<streams.count).map {
            ChatChoiceOutput(parsesToolCalls: prepared.parsesToolCalls, forcedPrefix: prepared.forcedPrefix, callPrefix: "call_\(header.id.suffix(12))_\($0)_")
        }
        var logprobs = [[ChatLogprobs.Entry]](repeating: [], count: streams.count)
        var infos = [GenerationInfo?](repeating: nil, count: streams.count)
        let tokenizer = service.tokenizer
        try await service.consume(streams, arrival: arrival) { index, event in
            switch event {
            case .token(_, let text, let logprob):
                _ = outputs[index].append(text)
                if let logprob { logprobs[index].append(logprob.chatEntry(tokenizer)) }
            case .done(let info):
                _ = outputs[index].finish()
                infos[index] = info
            }
        }
        let choices = outputs.indices.map { i in
            ChatChoice(
                index: i,
                message: ChatMessageDTO(
                    content: outputs[i].content.isEmpty && !outputs[i].toolCalls.isEmpty ? nil : outputs[i].content,
                    toolCalls: outputs[i].toolCalls.isEmpty ? nil : outputs[i].toolCalls),
                logprobs: prepared.scheduled.topLogprobs == nil ? nil : ChatLogprobs(content: logprobs[i]),
                finishReason: finishReason(infos[i], toolCalls: !outputs[i].toolCalls.isEmpty))
        }
        let completion = infos.reduce(0) { $0 + ($1?.completionTokens ?? 0) }
        return ChatCompletion(
            id: header.id, created: header.created, model: header.model, systemFingerprint: header.fingerprint,
            choices: choices, usage: Usage(prompt: prepared.scheduled.prompt.count, completion: completion))
    }

    private func streamChat(
        _ streams: [AsyncThrowingStream<SchedulerEvent, any Error>], prepared: InferenceService.Prepared, includeUsage: Bool,
        header: ResponseHeader, arrival: ContinuousClock.Instant, write: (any Encodable) async throws -> Void
    ) async throws {
        /// With include_usage every chunk has `usage` (null until the last one); without, none has.
        func chunk(_ choices: [ChatChunkChoice], usage: Usage? = nil) -> ChatCompletionChunk {
            ChatCompletionChunk(
                id: header.id, created: header.created, model: header.model, systemFingerprint: header.fingerprint,
                choices: choices, usage: includeUsage ? .some(usage) : .none)
        }
        var outputs = (0..<streams.count).map {
            ChatChoiceOutput(parsesToolCalls: prepared.parsesToolCalls, forcedPrefix: prepared.forcedPrefix, callPrefix: "call_\(header.id.suffix(12))_\($0)_")
        }
        var pendingLogprobs = [[ChatLogprobs.Entry]](repeating: [], count: streams.count)
        let wantsLogprobs = prepared.scheduled.topLogprobs != nil
        var completionTokens = 0
        let tokenizer = service.tokenizer
        for i in streams.indices {
            try await write(chunk([ChatChunkChoice(index: i, delta: ChatDelta(role: "assistant", content: ""))]))
        }
        try await service.consume(streams, arrival: arrival) { index, event in
            switch event {
            case .token(_, let text, let logprob):
                if let logprob { pendingLogprobs[index].append(logprob.chatEntry(tokenizer)) }
                let (content, calls) = outputs[index].append(text)
                if !content.isEmpty || !calls.isEmpty {
                    let logprobs = wantsLogprobs ? ChatLogprobs(content: pendingLogprobs[index]) : nil
                    pendingLogprobs[index].removeAll()
                    try await write(
                        chunk([
                            ChatChunkChoice(
                                index: index,
                                delta: ChatDelta(content: content.isEmpty ? nil : content, toolCalls: calls.isEmpty ? nil : calls),
                                logprobs: logprobs)
                        ]))
                }
            case .done(let info):
                completionTokens += info.completionTokens
                let (content, calls) = outputs[index].finish()
                let logprobs = wantsLogprobs ? ChatLogprobs(content: pendingLogprobs[index]) : nil
                try await write(
                    chunk([
                        ChatChunkChoice(
                            index: index,
                            delta: ChatDelta(content: content.isEmpty ? nil : content, toolCalls: calls.isEmpty ? nil : calls),
                            logprobs: logprobs, finishReason: finishReason(info, toolCalls: !outputs[index].toolCalls.isEmpty))
                    ]))
            }
        }
        if includeUsage {
            try await write(chunk([], usage: Usage(prompt: prepared.scheduled.prompt.count, completion: completionTokens)))
        }
    }
}

/// OpenAI's finish_reason: `tool_calls` when the message carries calls, else `stop` or `length`.
func finishReason(_ info: GenerationInfo?, toolCalls: Bool) -> String {
    if toolCalls { return "tool_calls" }
    switch info?.finishReason {
    case .length?: return "length"
    case .stop?, .cancelled?, nil: return "stop"
    }
}

/// What every chunk and completion of one response repeats.
struct ResponseHeader: Sendable {
    var id: String
    var created: Int
    var model: String
    var fingerprint = "internkit-0.1.0"
}

/// Reads the body (at most `limit` bytes) as a JSON object.
func readJSON(_ request: Request, limit: Int) async throws -> JSONValue {
    var request = request
    let buffer: ByteBuffer
    do {
        buffer = try await request.collectBody(upTo: limit)
    } catch is NIOTooManyBytesError {
        throw OpenAIError.bodyTooLarge(limit: limit)
    }
    return try parseBody(Array(buffer.readableBytesView))
}

func jsonResponse(_ value: some Encodable) throws -> Response {
    let data = try JSONEncoder.openAI.encode(value)
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// A `text/event-stream` response: each value written becomes `data: JSON\n\n`; `data: [DONE]` ends it. An
/// error after the head has gone out is sent as one more event with OpenAI's error object.
func eventStream(_ produce: @escaping @Sendable ((any Encodable) async throws -> Void) async throws -> Void) -> Response {
    Response(
        status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
        body: ResponseBody { writer in
            let encoder = JSONEncoder.openAI
            do {
                try await produce { value in
                    var bytes = Array("data: ".utf8)
                    bytes += try encoder.encode(value)
                    bytes += Array("\n\n".utf8)
                    try await writer.write(ByteBuffer(bytes: bytes))
                }
            } catch let error as OpenAIError {
                let data = try encoder.encode(error.body)
                try await writer.write(ByteBuffer(bytes: Array("data: ".utf8) + Array(data) + Array("\n\n".utf8)))
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        })
}
