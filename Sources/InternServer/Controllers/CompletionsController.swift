// POST /v1/completions: plain-text continuation (legacy OpenAI completions), streamed or not. The prompt
// is encoded with BOS, special-token names parsed, as `intern generate` does; generation stops at EOS.
import Foundation
public import Hummingbird
import InternEngine
import InternTokenizer

/// The completions endpoint.
public struct CompletionsController<Context: RequestContext>: Sendable {
    let service: InferenceService
    let maxBodyBytes: Int

    public var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("completions", use: create)
        return routes
    }

    @Sendable func create(request: Request, context: Context) async throws -> Response {
        let arrival = ContinuousClock.now
        let json = try await readJSON(request, limit: maxBodyBytes)
        let completion = try CompletionRequest(json: json)
        let prepared = try service.prepare(completion: completion)
        let streams = try service.submit(prepared)
        let header = ResponseHeader(
            id: "cmpl-\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))",
            created: Int(Date().timeIntervalSince1970), model: service.modelName)
        let echo = completion.echo ? ((try? service.tokenizer.decode(prepared.scheduled.prompt, rendering: .skip)) ?? "") : ""
        let tokenizer = service.tokenizer
        let wantsLogprobs = prepared.scheduled.topLogprobs != nil
        @Sendable func logprobs(_ entries: [(TokenLogprob, Int)]) -> CompletionLogprobs? {
            guard wantsLogprobs else { return nil }
            func text(_ id: Int32) -> String { UTF8Repair.string(from: tokenizer.bytes(for: id, rendering: .names, atStart: false)) }
            return CompletionLogprobs(
                tokens: entries.map { text($0.0.id) }, tokenLogprobs: entries.map(\.0.logprob),
                topLogprobs: entries.map { entry in
                    Dictionary(entry.0.top.map { (text($0.id), $0.logprob) }, uniquingKeysWith: { a, _ in a })
                },
                textOffset: entries.map(\.1))
        }
        if completion.sampling.stream {
            let includeUsage = completion.sampling.includeUsage
            let promptCount = prepared.scheduled.prompt.count
            return eventStream { write in
                func chunk(_ choices: [CompletionChoice], usage: Usage? = nil) -> Completion {
                    Completion(
                        id: header.id, created: header.created, model: header.model, systemFingerprint: header.fingerprint,
                        choices: choices, usage: includeUsage ? .some(usage) : .none)
                }
                var offsets = [Int](repeating: echo.utf8.count, count: streams.count)
                var completionTokens = 0
                if !echo.isEmpty {
                    for i in streams.indices { try await write(chunk([CompletionChoice(index: i, text: echo)])) }
                }
                try await service.consume(streams, arrival: arrival) { index, event in
                    switch event {
                    case .token(_, let text, let logprob):
                        let entries = logprob.map { [($0, offsets[index])] } ?? []
                        offsets[index] += text.utf8.count
                        if !text.isEmpty || !entries.isEmpty {
                            try await write(chunk([CompletionChoice(index: index, text: text, logprobs: logprobs(entries))]))
                        }
                    case .done(let info):
                        completionTokens += info.completionTokens
                        try await write(chunk([CompletionChoice(index: index, text: "", finishReason: finishReason(info, toolCalls: false))]))
                    }
                }
                if includeUsage { try await write(chunk([], usage: Usage(prompt: promptCount, completion: completionTokens))) }
            }
        }
        var texts = [String](repeating: echo, count: streams.count)
        var entries = [[(TokenLogprob, Int)]](repeating: [], count: streams.count)
        var infos = [GenerationInfo?](repeating: nil, count: streams.count)
        try await service.consume(streams, arrival: arrival) { index, event in
            switch event {
            case .token(_, let text, let logprob):
                if let logprob { entries[index].append((logprob, texts[index].utf8.count)) }
                texts[index] += text
            case .done(let info): infos[index] = info
            }
        }
        let choices = texts.indices.map {
            CompletionChoice(index: $0, text: texts[$0], logprobs: logprobs(entries[$0]), finishReason: finishReason(infos[$0], toolCalls: false))
        }
        let completionTokens = infos.reduce(0) { $0 + ($1?.completionTokens ?? 0) }
        return try jsonResponse(
            Completion(
                id: header.id, created: header.created, model: header.model, systemFingerprint: header.fingerprint, choices: choices,
                usage: .some(Usage(prompt: prepared.scheduled.prompt.count, completion: completionTokens))))
    }
}
