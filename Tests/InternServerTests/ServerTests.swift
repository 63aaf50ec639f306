// The HTTP layer in process (HummingbirdTesting `.router`): response shapes of every endpoint, SSE
// streaming, tool calls, and every error case. The model is scripted so that outputs are known: it
// answers a conversation without tools with one text, with tools declared with a tool call, and after a
// tool result with another text; the tokenizer is the real InternLM2 one.
import Foundation
import Hummingbird
import HummingbirdTesting
import InternChat
import InternCore
import InternEngine
import InternModels
import InternServer
import InternTokenizer
import Logging
import NIOCore
import Testing

let tokenizer = try! SentencePieceTokenizer(
    contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Assets/internlm2/tokenizer.model"))

func special(_ name: String) -> Int32 { tokenizer.specialTokenID(name)! }

/// What the scripted model says, as ids (the final stop token included).
enum Script {
    static let text = tokenizer.encode("Hello there, friend. Bye now.") + [special("<|im_end|>")]
    static let toolCall =
        [special("<|action_start|>"), special("<|plugin|>")]
        + tokenizer.encode("\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": 2}}") + [special("<|action_end|>")]
    static let answer = tokenizer.encode("It is sunny in Paris.") + [special("<|im_end|>")]
    /// The text a script shows (stop token left out).
    static func shown(_ ids: [Int32]) -> String { try! tokenizer.decode(Array(ids.dropLast()), rendering: .skip) }
}

/// A model that plays `Script`: the prompt's tokens pick the script (a tool result → answer, tools
/// declared → tool call, else text) and the number of decoded tokens picks the position in it. It keeps
/// each position's token and whether it came from a prefill in its KV cache, as a real model keeps keys.
final class ScriptedChatModel: LanguageModel, @unchecked Sendable {
    let vocabularySize = 92544
    let maxSequenceLength: Int
    let kvCacheLayers = 1
    let kvCacheRowSize = 1

    init(maxSequenceLength: Int = 512) { self.maxSequenceLength = maxSequenceLength }

    func forward(_ tokens: UnsafeBufferPointer<Int32>, cache: any KVCache, allLogits: Bool, logits: UnsafeMutablePointer<Float>) throws {
        try write(tokens, cache: cache, prefill: true, logits: logits)
    }

    func forwardBatch(_ tokens: UnsafeBufferPointer<Int32>, caches: [any KVCache], logits: UnsafeMutablePointer<Float>) throws {
        for b in tokens.indices {
            try write(UnsafeBufferPointer(rebasing: tokens[b..<(b + 1)]), cache: caches[b], prefill: false, logits: logits + b * vocabularySize)
        }
    }

    private func write(_ tokens: UnsafeBufferPointer<Int32>, cache: any KVCache, prefill: Bool, logits: UnsafeMutablePointer<Float>) throws {
        try cache.reserve(cache.count + tokens.count)
        // Token ids need f32 keys (f16 holds integers exactly only up to 2048).
        precondition(cache.type == .f32, "the scripted model needs an f32 KV cache")
        let keys = cache.layer(0).keys.assumingMemoryBound(to: Float.self)
        let values = cache.layer(0).values.assumingMemoryBound(to: Float.self)
        for (i, t) in tokens.enumerated() {
            keys[cache.count + i] = Float(t)
            values[cache.count + i] = prefill ? 1 : 0
        }
        cache.commit(tokens.count)
        let history = (0..<cache.count).map { Int32(keys[$0]) }
        let decoded = (0..<cache.count).filter { values[$0] == 0 }.count
        let script =
            history.contains(special("<|action_end|>"))
            ? Script.answer
            : history.contains(special("<|plugin|>")) ? Script.toolCall : Script.text
        for i in 0..<vocabularySize { logits[i] = 0 }
        // 50 against 92543 zeros: the script's token even at temperature 1 (OpenAI's default).
        logits[Int(decoded < script.count ? script[decoded] : special("<|im_end|>"))] = 50
    }
}

struct TestServer {
    let service: InferenceService
    let app: Application<RouterResponder<BasicRequestContext>>

    init(maxBatch: Int = 4, context: Int = 512, queue: Int = 16, apiKey: String? = nil, maxBodyBytes: Int = 1 << 20, start: Bool = true) {
        let model = ScriptedChatModel(maxSequenceLength: context)
        let plan = MemoryPlan(
            model: model, weightsBytes: 0, maxBatch: maxBatch, contextLength: context, queueCapacity: queue, kvCacheType: .f32)
        service = InferenceService(model: model, tokenizer: tokenizer, modelName: "tiny", plan: plan, logger: Logger(label: "test"))
        if start { service.scheduler.start() }
        let router = buildRouter(service: service, configuration: ServerConfiguration(apiKey: apiKey, maxBodyBytes: maxBodyBytes))
        app = Application(router: router)
    }

    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await app.test(.router, body)
        await service.scheduler.shutdown()
    }
}

// MARK: - Helpers

func json(_ buffer: ByteBuffer) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
}

extension TestClientProtocol {
    func post(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(
            uri: uri, method: .post, headers: headers.isEmpty ? [.contentType: "application/json"] : headers,
            body: ByteBuffer(string: body))
    }
}

/// The `data:` payloads of an SSE body, in order.
func events(_ buffer: ByteBuffer) -> [String] {
    String(buffer: buffer).components(separatedBy: "\n\n").filter { !$0.isEmpty }.map {
        #expect($0.hasPrefix("data: "), "not an SSE data line: \($0)")
        return String($0.dropFirst(6))
    }
}

/// The error object of an OpenAI error body, checked for the four fields.
func errorObject(_ response: TestResponse) throws -> [String: Any] {
    let body = try json(response.body)
    let error = try #require(body["error"] as? [String: Any], "no error object in \(String(buffer: response.body))")
    #expect(error["message"] is String)
    #expect(error["type"] is String)
    #expect(error.keys.contains("param") && error.keys.contains("code"))
    return error
}

let userHello = #"{"model": "tiny", "messages": [{"role": "user", "content": "Hi!"}]"#
let weatherTools =
    #"[{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}]"#

func promptCount(_ messages: [ChatMessage], tools: [ToolDeclaration] = []) throws -> Int {
    try InternLM2ChatFormat(tokenizer: tokenizer).promptIDs(for: messages, tools: tools).count
}

// MARK: - Tests

@Suite struct EndpointTests {
    @Test func modelsListsTheServedModel() async throws {
        try await TestServer().test { client in
            let response = try await client.execute(uri: "/v1/models", method: .get)
            #expect(response.status == .ok)
            let body = try json(response.body)
            #expect(body["object"] as? String == "list")
            let data = try #require(body["data"] as? [[String: Any]])
            #expect(data.count == 1)
            #expect(data[0]["id"] as? String == "tiny")
            #expect(data[0]["object"] as? String == "model")
            #expect(data[0]["max_model_len"] as? Int == 512)
        }
    }

    @Test func healthAndMetricsAnswer() async throws {
        try await TestServer().test { client in
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
            _ = try await client.post("/v1/chat/completions", userHello + "}")
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            let text = String(buffer: metrics.body)
            for name in [
                "intern_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1", "intern_prompt_tokens_total",
                "intern_completion_tokens_total \(Script.text.count - 1)", "intern_time_to_first_token_seconds_bucket",
                "intern_inter_token_latency_seconds_bucket", "intern_batch_size_bucket", "intern_queue_depth 0.0",
                "intern_active_sequences 0.0", "intern_kv_reserved_tokens 0.0", "intern_kv_budget_tokens", "intern_weights_bytes",
            ] {
                #expect(text.contains(name), "/metrics lacks \(name)")
            }
        }
    }

    @Test func chatCompletionHasOpenAIsShape() async throws {
        try await TestServer().test { client in
            let response = try await client.post("/v1/chat/completions", userHello + #", "max_tokens": 50}"#)
            #expect(response.status == .ok)
            let body = try json(response.body)
            #expect(body["object"] as? String == "chat.completion")
            #expect((body["id"] as? String)?.hasPrefix("chatcmpl-") == true)
            #expect(body["model"] as? String == "tiny")
            let choice = try #require((body["choices"] as? [[String: Any]])?.first)
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["role"] as? String == "assistant")
            #expect(message["content"] as? String == Script.shown(Script.text))
            #expect(message["tool_calls"] == nil)
            #expect(choice["finish_reason"] as? String == "stop")
            let usage = try #require(body["usage"] as? [String: Int])
            #expect(usage["prompt_tokens"] == (try promptCount([.user("Hi!")])))
            #expect(usage["completion_tokens"] == Script.text.count - 1)
            #expect(usage["total_tokens"] == usage["prompt_tokens"]! + usage["completion_tokens"]!)
        }
    }

    @Test func maxTokensEndsWithLength() async throws {
        try await TestServer().test { client in
            let body = try json(try await client.post("/v1/chat/completions", userHello + #", "max_completion_tokens": 3}"#).body)
            let choice = try #require((body["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "length")
            #expect((body["usage"] as? [String: Int])?["completion_tokens"] == 3)
            let expected = try tokenizer.decode(Array(Script.text.prefix(3)), rendering: .skip)
            #expect((choice["message"] as? [String: Any])?["content"] as? String == expected)
        }
    }

    @Test func ignoreEOSGeneratesTheFullLength() async throws {
        try await TestServer().test { client in
            let body = try json(try await client.post("/v1/chat/completions", userHello + #", "max_tokens": 12, "ignore_eos": true}"#).body)
            let choice = try #require((body["choices"] as? [[String: Any]])?.first)
            #expect(Script.text.count - 1 < 12)
            #expect(choice["finish_reason"] as? String == "length")
            #expect((body["usage"] as? [String: Int])?["completion_tokens"] == 12)
        }
    }

    @Test func stopStringCutsTheText() async throws {
        try await TestServer().test { client in
            let body = try json(try await client.post("/v1/chat/completions", userHello + #", "stop": ["friend", "zzz"]}"#).body)
            let choice = try #require((body["choices"] as? [[String: Any]])?.first)
            let full = Script.shown(Script.text)
            #expect((choice["message"] as? [String: Any])?["content"] as? String == String(full[..<full.range(of: "friend")!.lowerBound]))
            #expect(choice["finish_reason"] as? String == "stop")
        }
    }

    @Test func nChoicesAndLogprobs() async throws {
        try await TestServer().test { client in
            let body = try json(try await client.post("/v1/chat/completions", userHello + #", "n": 2, "logprobs": true, "top_logprobs": 3}"#).body)
            let choices = try #require(body["choices"] as? [[String: Any]])
            #expect(choices.map { $0["index"] as? Int } == [0, 1])
            for choice in choices {
                let content = try #require((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
                #expect(content.count == Script.text.count - 1)
                for entry in content {
                    let top = try #require(entry["top_logprobs"] as? [[String: Any]])
                    #expect(top.count == 3)
                    #expect(top[0]["token"] as? String == entry["token"] as? String)
                    #expect((entry["logprob"] as? Double ?? 1) <= 0)
                }
            }
            #expect((body["usage"] as? [String: Int])?["completion_tokens"] == 2 * (Script.text.count - 1))
        }
    }

    @Test func streamingChatSendsRoleFirstAndFinishReasonLast() async throws {
        try await TestServer().test { client in
            let response = try await client.post(
                "/v1/chat/completions", userHello + #", "stream": true, "stream_options": {"include_usage": true}}"#)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            let payloads = events(response.body)
            #expect(payloads.last == "[DONE]")
            let chunks = try payloads.dropLast().map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
            #expect(Set(chunks.compactMap { $0["id"] as? String }).count == 1)
            let choiceChunks = chunks.dropLast()
            let deltas = choiceChunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
            #expect((deltas.first?["delta"] as? [String: Any])?["role"] as? String == "assistant")
            #expect(deltas.dropLast().allSatisfy { $0["finish_reason"] is NSNull })
            #expect(deltas.last?["finish_reason"] as? String == "stop")
            let text = deltas.compactMap { ($0["delta"] as? [String: Any])?["content"] as? String }.joined()
            #expect(text == Script.shown(Script.text))
            // include_usage: null usage on every chunk but the last, which has no choices and the usage.
            #expect(choiceChunks.allSatisfy { $0["usage"] is NSNull })
            let last = try #require(chunks.last)
            #expect((last["choices"] as? [Any])?.isEmpty == true)
            let usage = try #require(last["usage"] as? [String: Int])
            #expect(usage["completion_tokens"] == Script.text.count - 1)
            #expect(usage["prompt_tokens"] == (try promptCount([.user("Hi!")])))
        }
    }

    @Test func toolCallRoundTrip() async throws {
        try await TestServer().test { client in
            // 1. tools declared → the model calls get_weather.
            let first = try json(
                try await client.post(
                    "/v1/chat/completions", #"{"model": "tiny", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": "# + weatherTools + "}"
                ).body)
            let choice = try #require((first["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "tool_calls")
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["content"] is NSNull)
            let calls = try #require(message["tool_calls"] as? [[String: Any]])
            #expect(calls.count == 1)
            #expect(calls[0]["type"] as? String == "function")
            let function = try #require(calls[0]["function"] as? [String: Any])
            #expect(function["name"] as? String == "get_weather")
            let arguments = try JSONValue(parsing: try #require(function["arguments"] as? String))
            #expect(arguments == .object([("city", .string("Paris")), ("days", .number("2"))]))
            let tools = try ToolDeclaration.list(json: JSONValue(parsing: weatherTools))
            #expect((first["usage"] as? [String: Int])?["prompt_tokens"] == (try promptCount([.user("Weather in Paris?")], tools: tools)))
            // 2. the call and its result go back; the tool message becomes the environment role.
            let id = try #require(calls[0]["id"] as? String)
            let second = try await client.post(
                "/v1/chat/completions",
                #"""
                {"model": "tiny", "tools": \#(weatherTools), "messages": [
                  {"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": null, "tool_calls": [{"id": "\#(id)", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 2}"}}]},
                  {"role": "tool", "tool_call_id": "\#(id)", "content": "sunny, 24 C"}]}
                """#)
            #expect(second.status == .ok)
            let answer = try json(second.body)
            let answerChoice = try #require((answer["choices"] as? [[String: Any]])?.first)
            #expect(answerChoice["finish_reason"] as? String == "stop")
            #expect((answerChoice["message"] as? [String: Any])?["content"] as? String == Script.shown(Script.answer))
            let conversation: [ChatMessage] = [
                .user("Weather in Paris?"),
                .assistant("", actions: [.plugin(ToolCall(name: "get_weather", parameters: .object([("city", .string("Paris")), ("days", .number("2"))])))]),
                .environment("sunny, 24 C"),
            ]
            #expect((answer["usage"] as? [String: Int])?["prompt_tokens"] == (try promptCount(conversation, tools: tools)))
        }
    }

    @Test func toolCallsStreamAsDeltas() async throws {
        try await TestServer().test { client in
            let response = try await client.post(
                "/v1/chat/completions",
                #"{"model": "tiny", "stream": true, "messages": [{"role": "user", "content": "Weather?"}], "tools": "# + weatherTools + "}")
            let chunks = try events(response.body).dropLast().map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            let choices = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
            let calls = choices.compactMap { ($0["delta"] as? [String: Any])?["tool_calls"] as? [[String: Any]] }.flatMap { $0 }
            #expect(calls.count == 1)
            #expect(calls.first?["index"] as? Int == 0)
            #expect((calls.first?["function"] as? [String: Any])?["name"] as? String == "get_weather")
            #expect(choices.last?["finish_reason"] as? String == "tool_calls")
            let text = choices.compactMap { ($0["delta"] as? [String: Any])?["content"] as? String }.joined()
            #expect(text.isEmpty, "the call's text leaked into content: \(text)")
        }
    }

    @Test func completionsContinueText() async throws {
        try await TestServer().test { client in
            let body = try json(try await client.post("/v1/completions", #"{"model": "tiny", "prompt": "Once upon", "max_tokens": 4, "logprobs": 2}"#).body)
            #expect(body["object"] as? String == "text_completion")
            let choice = try #require((body["choices"] as? [[String: Any]])?.first)
            #expect(choice["text"] as? String == (try tokenizer.decode(Array(Script.text.prefix(4)), rendering: .skip)))
            #expect(choice["finish_reason"] as? String == "length")
            let logprobs = try #require(choice["logprobs"] as? [String: Any])
            #expect((logprobs["tokens"] as? [String])?.count == 4)
            #expect((logprobs["top_logprobs"] as? [[String: Double]])?.allSatisfy { $0.count == 2 } == true)
            let usage = try #require(body["usage"] as? [String: Int])
            #expect(usage["prompt_tokens"] == tokenizer.encode("Once upon", addBOS: true, parseSpecialTokens: true).count)
            #expect(usage["completion_tokens"] == 4)
            let streamed = try await client.post("/v1/completions", #"{"model": "tiny", "prompt": [1, 300, 301], "max_tokens": 4, "stream": true}"#)
            let chunks = try events(streamed.body).dropLast().map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            let texts = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["text"] as? String }
            #expect(texts.joined() == choice["text"] as? String)
            #expect((chunks.last?["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "length")
        }
    }
}

@Suite struct ErrorTests {
    @Test(
        arguments: [
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}"#, "invalid_json", nil),
            (#"[1, 2]"#, "invalid_json", nil),
            (#"{"messages": [{"role": "user", "content": "Hi"}]}"#, "missing_field", "model"),
            (#"{"model": "tiny"}"#, "missing_field", "messages"),
            (#"{"model": "tiny", "messages": "Hi"}"#, "invalid_type", "messages"),
            (#"{"model": "tiny", "messages": []}"#, "invalid_value", "messages"),
            (#"{"model": "tiny", "messages": [{"role": "robot", "content": "Hi"}]}"#, "invalid_value", "messages[0].role"),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": 5}]}"#, "invalid_value", "messages[0].content"),
            (#"{"model": 7, "messages": [{"role": "user", "content": "Hi"}]}"#, "invalid_type", "model"),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "temperature": "hot"}"#, "invalid_type", "temperature"),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "temperature": 3}"#, "invalid_value", "temperature"),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1.5}"#, "invalid_type", "max_tokens"),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": -1}"#, "invalid_value", "max_tokens"),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "stop": [1]}"#, "invalid_type", "stop[0]"),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "stream": "yes"}"#, "invalid_type", "stream"),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "n": 0}"#, "invalid_value", "n"),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "top_logprobs": 2}"#, "invalid_value", "top_logprobs"),
            (
                #"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "stream_options": {"include_usage": 1}}"#, "invalid_type",
                "stream_options.include_usage"
            ),
            (
                #"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function", "function": {}}]}"#, "invalid_value",
                "tools[0].function.name"
            ),
            (#"{"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "tool_choice": "auto"}"#, "invalid_value", "tool_choice"),
            (
                #"{"model": "tiny", "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}]}"#, "invalid_value",
                "messages[0].tool_calls[0].function.arguments"
            ),
        ] as [(String, String, String?)])
    func malformedChatRequestIs400NamingTheField(body: String, code: String, param: String?) async throws {
        try await TestServer().test { client in
            let response = try await client.post("/v1/chat/completions", body)
            #expect(response.status == .badRequest, "\(body) → \(response.status)")
            let error = try errorObject(response)
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error["code"] as? String == code, "\(body): \(error)")
            if let param { #expect(error["param"] as? String == param, "\(body): \(error)") } else { #expect(error["param"] is NSNull) }
        }
    }

    @Test func completionsPromptErrorsNameTheField() async throws {
        try await TestServer().test { client in
            for (body, param) in [
                (#"{"model": "tiny"}"#, "prompt"), (#"{"model": "tiny", "prompt": {"a": 1}}"#, "prompt"),
                (#"{"model": "tiny", "prompt": [1, "x"]}"#, "prompt[1]"), (#"{"model": "tiny", "prompt": [1, 99999999]}"#, "prompt[1]"),
            ] {
                let response = try await client.post("/v1/completions", body)
                #expect(response.status == .badRequest)
                #expect(try errorObject(response)["param"] as? String == param, "\(body)")
            }
        }
    }

    @Test func unknownModelIs404() async throws {
        try await TestServer().test { client in
            let response = try await client.post("/v1/chat/completions", #"{"model": "gpt-5", "messages": [{"role": "user", "content": "Hi"}]}"#)
            #expect(response.status == .notFound)
            let error = try errorObject(response)
            #expect(error["code"] as? String == "model_not_found")
            #expect((error["message"] as? String)?.contains("gpt-5") == true)
            #expect(try await client.post("/v1/completions", #"{"model": "x", "prompt": "a"}"#).status == .notFound)
            #expect(try await client.execute(uri: "/v1/models/x", method: .get).status == .notFound)
            let route = try await client.execute(uri: "/v1/nothing", method: .get)
            #expect(route.status == .notFound)
            #expect(try errorObject(route)["code"] as? String == "not_found")
        }
    }

    @Test func contextOverflowIs400WithBothNumbers() async throws {
        try await TestServer(context: 64).test { client in
            let prompt = try promptCount([.user("Hi!")])
            let response = try await client.post("/v1/chat/completions", userHello + #", "max_tokens": 60}"#)
            #expect(response.status == .badRequest)
            let error = try errorObject(response)
            #expect(error["code"] as? String == "context_length_exceeded")
            let message = try #require(error["message"] as? String)
            #expect(message.contains("64"), "\(message)")
            #expect(message.contains("\(prompt + 60)") && message.contains("\(prompt) in the prompt") && message.contains("60 in the completion"), "\(message)")
            let long = String(repeating: "word ", count: 100)
            let tooLong = try await client.post("/v1/completions", #"{"model": "tiny", "prompt": "\#(long)"}"#)
            #expect(tooLong.status == .badRequest)
            #expect(try errorObject(tooLong)["code"] as? String == "context_length_exceeded")
        }
    }

    @Test func apiKeyIsRequiredWhenSet() async throws {
        try await TestServer(apiKey: "sekret").test { client in
            let missing = try await client.post("/v1/chat/completions", userHello + "}")
            #expect(missing.status == .unauthorized)
            #expect(try errorObject(missing)["code"] as? String == "invalid_api_key")
            let wrong = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer nope"])
            #expect(wrong.status == .unauthorized)
            let right = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer sekret"])
            #expect(right.status == .ok)
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
        }
    }

    @Test func invalidUTF8Is400() async throws {
        try await TestServer().test { client in
            var bytes = Array(#"{"model": "tiny", "messages": [{"role": "user", "content": "#.utf8)
            bytes += [0x22, 0xC3, 0x28, 0xFF, 0x22, 0x7D, 0x5D, 0x7D]
            let response = try await client.execute(uri: "/v1/chat/completions", method: .post, body: ByteBuffer(bytes: bytes))
            #expect(response.status == .badRequest)
            #expect(try errorObject(response)["code"] as? String == "invalid_utf8")
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await TestServer(maxBodyBytes: 1000).test { client in
            let big = #"{"model": "tiny", "messages": [{"role": "user", "content": ""# + String(repeating: "a", count: 5000) + #""}]}"#
            let response = try await client.post("/v1/chat/completions", big)
            #expect(response.status == .contentTooLarge)
            #expect(try errorObject(response)["code"] as? String == "request_too_large")
        }
    }

    @Test func fullQueueIs429() async throws {
        // Not started: queued requests stay queued. With one slot and one queue place, two fill it; the
        // next is refused.
        let server = TestServer(maxBatch: 1, queue: 1, start: false)
        let waiting = try (0..<2).map { _ in
            try server.service.scheduler.submit(ScheduledRequest(prompt: [1, 2], parameters: GenerationParameters()))
        }
        try await server.test { client in
            let response = try await client.post("/v1/chat/completions", userHello + "}")
            #expect(response.status == .tooManyRequests)
            let error = try errorObject(response)
            #expect(error["type"] as? String == "rate_limit_error")
            #expect(error["code"] as? String == "rate_limit_exceeded")
        }
        _ = waiting
    }
}
