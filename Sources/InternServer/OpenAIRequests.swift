// The request bodies of /v1/chat/completions and /v1/completions, read from InternChat's order-keeping
// JSONValue (not JSONSerialization, which drops a leading U+FEFF on Linux) with one typed accessor per
// field, so every wrong type or range is a 400 that names the field. Fields follow OpenAI's API
// reference; `top_k`, `min_p` and `repetition_penalty` are the common extensions (vLLM, LMDeploy).
import Foundation
public import InternChat

/// Fields both endpoints share.
public struct SamplingRequest: Sendable, Equatable {
    public var model: String
    public var maxTokens: Int?
    public var temperature: Double = 1
    public var topP: Double = 1
    public var topK: Int = 0
    public var minP: Double = 0
    public var repetitionPenalty: Double = 1
    public var presencePenalty: Double = 0
    public var frequencyPenalty: Double = 0
    public var stop: [String] = []
    public var seed: UInt64?
    public var n: Int = 1
    public var stream = false
    public var includeUsage = false
    public var logprobs = false
    /// Alternatives per token when `logprobs` is on.
    public var topLogprobs: Int = 0
    /// Generate `max_tokens` whatever the model says (vLLM's and LMDeploy's `ignore_eos`, for benchmarks).
    public var ignoreEOS = false
}

/// A parsed /v1/chat/completions body.
public struct ChatCompletionRequest: Sendable {
    public enum ToolChoice: Sendable, Equatable {
        case none, auto, required
        case function(String)
    }
    public var sampling: SamplingRequest
    public var messages: [ChatMessage]
    public var tools: [ToolDeclaration]
    public var toolChoice: ToolChoice
}

/// A parsed /v1/completions body.
public struct CompletionRequest: Sendable {
    public enum Prompt: Sendable, Equatable {
        case text(String)
        case ids([Int32])
    }
    public var sampling: SamplingRequest
    public var prompt: Prompt
    public var echo: Bool
}

// MARK: - Parsing

/// Reads the body as JSON: invalid UTF-8 and malformed JSON are 400s.
func parseBody(_ bytes: [UInt8]) throws(OpenAIError) -> JSONValue {
    guard let text = String(validating: bytes, as: UTF8.self) else {
        throw .invalidRequest("The request body is not valid UTF-8.", code: "invalid_utf8")
    }
    let value: JSONValue
    do {
        value = try JSONValue(parsing: text)
    } catch {
        throw .invalidRequest("The request body is not valid JSON: \(error.description).", code: "invalid_json")
    }
    guard case .object = value else { throw .invalidRequest("The request body must be a JSON object.", code: "invalid_json") }
    return value
}

/// Typed access to a request object's fields; every failure names the field.
struct Fields {
    let json: JSONValue

    func value(_ key: String) -> JSONValue? {
        guard let v = json[key], v != .null else { return nil }
        return v
    }

    private func wrongType(_ key: String, _ expected: String) -> OpenAIError {
        .invalidRequest("'\(key)' must be \(expected).", param: key, code: "invalid_type")
    }

    func string(_ key: String) throws(OpenAIError) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw wrongType(key, "a string") }
        return s
    }

    func bool(_ key: String) throws(OpenAIError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw wrongType(key, "a boolean") }
        return b
    }

    func double(_ key: String, in range: ClosedRange<Double>) throws(OpenAIError) -> Double? {
        guard let v = value(key) else { return nil }
        guard case .number(let text) = v, let d = Double(text), d.isFinite else { throw wrongType(key, "a number") }
        guard range.contains(d) else {
            throw .invalidRequest(
                "'\(key)' is \(text); it must be between \(range.lowerBound) and \(range.upperBound).", param: key,
                code: "invalid_value")
        }
        return d
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws(OpenAIError) -> Int? {
        guard let v = value(key) else { return nil }
        guard case .number(let text) = v else { throw wrongType(key, "an integer") }
        guard let i = Int(text) ?? Double(text).flatMap({ $0.rounded() == $0 && abs($0) < 1e15 ? Int($0) : nil }) else {
            throw wrongType(key, "an integer")
        }
        guard range.contains(i) else {
            throw .invalidRequest(
                "'\(key)' is \(i); it must be between \(range.lowerBound) and \(range.upperBound).", param: key,
                code: "invalid_value")
        }
        return i
    }

    func sampling() throws(OpenAIError) -> SamplingRequest {
        guard let model = try string("model") else {
            throw .invalidRequest("'model' is required.", param: "model", code: "missing_field")
        }
        var s = SamplingRequest(model: model)
        let maxTokens = try int("max_tokens", in: 0...Int(Int32.max))
        let maxCompletionTokens = try int("max_completion_tokens", in: 0...Int(Int32.max))
        s.maxTokens = maxCompletionTokens ?? maxTokens
        s.temperature = try double("temperature", in: 0...2) ?? 1
        s.topP = try double("top_p", in: 0...1) ?? 1
        if s.topP == 0 { throw .invalidRequest("'top_p' must be greater than 0.", param: "top_p", code: "invalid_value") }
        s.topK = try int("top_k", in: -1...Int(Int32.max)).map { max(0, $0) } ?? 0
        s.minP = try double("min_p", in: 0...1) ?? 0
        s.repetitionPenalty = try double("repetition_penalty", in: 0.01...10) ?? 1
        s.presencePenalty = try double("presence_penalty", in: -2...2) ?? 0
        s.frequencyPenalty = try double("frequency_penalty", in: -2...2) ?? 0
        switch value("stop") {
        case nil: break
        case .string(let one)?: s.stop = [one]
        case .array(let list)?:
            guard list.count <= 4 else {
                throw .invalidRequest("'stop' has \(list.count) entries; at most 4 are allowed.", param: "stop", code: "invalid_value")
            }
            for (i, item) in list.enumerated() {
                guard case .string(let text) = item else { throw wrongType("stop[\(i)]", "a string") }
                s.stop.append(text)
            }
        default: throw wrongType("stop", "a string or a list of strings")
        }
        if let seed = value("seed") {
            guard case .number(let text) = seed, let n = Int64(text) else { throw wrongType("seed", "an integer") }
            s.seed = UInt64(bitPattern: n)
        }
        s.n = try int("n", in: 1...16) ?? 1
        s.ignoreEOS = try bool("ignore_eos") ?? false
        s.stream = try bool("stream") ?? false
        if let options = value("stream_options") {
            guard case .object = options else { throw wrongType("stream_options", "an object") }
            let nested = Fields(json: options)
            do {
                s.includeUsage = try nested.bool("include_usage") ?? false
            } catch {
                throw .invalidRequest(
                    "'stream_options.include_usage' must be a boolean.", param: "stream_options.include_usage",
                    code: "invalid_type")
            }
        }
        return s
    }
}

extension ChatCompletionRequest {
    init(json: JSONValue) throws(OpenAIError) {
        let fields = Fields(json: json)
        var sampling = try fields.sampling()
        // Chat's logprobs is a boolean plus top_logprobs (0–20).
        sampling.logprobs = try fields.bool("logprobs") ?? false
        sampling.topLogprobs = try fields.int("top_logprobs", in: 0...20) ?? 0
        if sampling.topLogprobs > 0 && !sampling.logprobs {
            throw .invalidRequest("'top_logprobs' requires 'logprobs' to be true.", param: "top_logprobs", code: "invalid_value")
        }
        guard let list = fields.value("messages") else {
            throw .invalidRequest("'messages' is required.", param: "messages", code: "missing_field")
        }
        guard case .array(let items) = list else {
            throw .invalidRequest("'messages' must be a list of messages.", param: "messages", code: "invalid_type")
        }
        guard !items.isEmpty else {
            throw .invalidRequest("'messages' must not be empty.", param: "messages", code: "invalid_value")
        }
        do {
            messages = try ChatMessage.conversation(json: list)
        } catch {
            throw .invalidRequest("'\(error.path)': \(error.reason).", param: error.path, code: "invalid_value")
        }
        if let tools = fields.value("tools") {
            guard case .array = tools else {
                throw .invalidRequest("'tools' must be a list of tools.", param: "tools", code: "invalid_type")
            }
            do {
                self.tools = try ToolDeclaration.list(json: tools)
            } catch {
                throw .invalidRequest("'\(error.path)': \(error.reason).", param: error.path, code: "invalid_value")
            }
        } else {
            tools = []
        }
        switch fields.value("tool_choice") {
        case nil: toolChoice = tools.isEmpty ? .none : .auto
        case .string("none")?: toolChoice = .none
        case .string("auto")?: toolChoice = .auto
        case .string("required")?: toolChoice = .required
        case let choice? where choice["function"]?["name"]?.stringValue != nil:
            let name = choice["function"]!["name"]!.stringValue!
            guard tools.contains(where: { $0.name == name }) else {
                throw .invalidRequest(
                    "'tool_choice' names the function '\(name)', which is not in 'tools'.",
                    param: "tool_choice.function.name", code: "invalid_value")
            }
            toolChoice = .function(name)
        default:
            throw .invalidRequest(
                "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}.",
                param: "tool_choice", code: "invalid_value")
        }
        if toolChoice != .none && tools.isEmpty {
            throw .invalidRequest("'tool_choice' is set but 'tools' is empty.", param: "tool_choice", code: "invalid_value")
        }
        self.sampling = sampling
    }
}

extension CompletionRequest {
    init(json: JSONValue) throws(OpenAIError) {
        let fields = Fields(json: json)
        var sampling = try fields.sampling()
        // Completions' logprobs is an integer: how many alternatives (0–5 at OpenAI; 20 here).
        if let k = try fields.int("logprobs", in: 0...20) {
            sampling.logprobs = true
            sampling.topLogprobs = k
        }
        echo = try fields.bool("echo") ?? false
        switch fields.value("prompt") {
        case nil: throw .invalidRequest("'prompt' is required.", param: "prompt", code: "missing_field")
        case .string(let text)?: prompt = .text(text)
        case .array(let items)?:
            // One prompt only: a list of ids, or a list holding one string.
            if items.count == 1, case .string(let text) = items[0] {
                prompt = .text(text)
            } else {
                var ids: [Int32] = []
                for (i, item) in items.enumerated() {
                    guard case .number(let text) = item, let id = Int32(text) else {
                        throw .invalidRequest(
                            "'prompt[\(i)]' must be a token id (one prompt per request is supported).",
                            param: "prompt[\(i)]", code: "invalid_type")
                    }
                    ids.append(id)
                }
                prompt = .ids(ids)
            }
        default: throw .invalidRequest("'prompt' must be a string or a list of token ids.", param: "prompt", code: "invalid_type")
        }
        self.sampling = sampling
    }
}
