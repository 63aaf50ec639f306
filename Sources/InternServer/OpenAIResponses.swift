// Response bodies in OpenAI's shapes (chat.completion, chat.completion.chunk, text_completion, list of
// models). CodingKeys are OpenAI's field names; optional fields that OpenAI sends as null are encoded
// as null, those it leaves out are left out.
import Foundation

struct Usage: Codable, Equatable, Sendable {
    var promptTokens: Int
    var completionTokens: Int
    var totalTokens: Int
    init(prompt: Int, completion: Int) {
        promptTokens = prompt
        completionTokens = completion
        totalTokens = prompt + completion
    }
    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
    }
}

struct ModelCard: Codable, Sendable {
    var id: String
    var object = "model"
    var created: Int
    var ownedBy = "internkit"
    var maxModelLen: Int
    enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by", maxModelLen = "max_model_len" }
}

struct ModelList: Codable, Sendable {
    var object = "list"
    var data: [ModelCard]
}

// MARK: - Chat

struct ToolCallDTO: Codable, Equatable, Sendable {
    struct Function: Codable, Equatable, Sendable {
        var name: String?
        var arguments: String
    }
    /// Only in stream deltas: which call of the message this delta extends.
    var index: Int?
    var id: String?
    var type: String?
    var function: Function
}

struct ChatLogprobs: Codable, Sendable {
    struct Top: Codable, Sendable {
        var token: String
        var logprob: Float
        var bytes: [UInt8]
    }
    struct Entry: Codable, Sendable {
        var token: String
        var logprob: Float
        var bytes: [UInt8]
        var topLogprobs: [Top]
        enum CodingKeys: String, CodingKey { case token, logprob, bytes, topLogprobs = "top_logprobs" }
    }
    var content: [Entry]
}

struct ChatMessageDTO: Codable, Sendable {
    var role = "assistant"
    var content: String?
    var toolCalls: [ToolCallDTO]?
    enum CodingKeys: String, CodingKey { case role, content, toolCalls = "tool_calls" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(content, forKey: .content)
        try c.encodeIfPresent(toolCalls, forKey: .toolCalls)
    }
}

struct ChatChoice: Codable, Sendable {
    var index: Int
    var message: ChatMessageDTO
    var logprobs: ChatLogprobs?
    var finishReason: String
    enum CodingKeys: String, CodingKey { case index, message, logprobs, finishReason = "finish_reason" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(message, forKey: .message)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

struct ChatCompletion: Codable, Sendable {
    var id: String
    var object = "chat.completion"
    var created: Int
    var model: String
    var systemFingerprint: String
    var choices: [ChatChoice]
    var usage: Usage
    enum CodingKeys: String, CodingKey {
        case id, object, created, model, systemFingerprint = "system_fingerprint", choices, usage
    }
}

struct ChatDelta: Codable, Sendable {
    var role: String?
    var content: String?
    var toolCalls: [ToolCallDTO]?
    enum CodingKeys: String, CodingKey { case role, content, toolCalls = "tool_calls" }
}

struct ChatChunkChoice: Codable, Sendable {
    var index: Int
    var delta: ChatDelta
    var logprobs: ChatLogprobs?
    var finishReason: String?
    enum CodingKeys: String, CodingKey { case index, delta, logprobs, finishReason = "finish_reason" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(delta, forKey: .delta)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

struct ChatCompletionChunk: Codable, Sendable {
    var id: String
    var object = "chat.completion.chunk"
    var created: Int
    var model: String
    var systemFingerprint: String
    var choices: [ChatChunkChoice]
    /// Present (null until the last chunk) only when `stream_options.include_usage` is set.
    var usage: Usage??
    enum CodingKeys: String, CodingKey {
        case id, object, created, model, systemFingerprint = "system_fingerprint", choices, usage
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(systemFingerprint, forKey: .systemFingerprint)
        try c.encode(choices, forKey: .choices)
        if let usage { try c.encode(usage, forKey: .usage) }
    }
}

// MARK: - Completions

struct CompletionLogprobs: Codable, Sendable {
    var tokens: [String]
    var tokenLogprobs: [Float]
    var topLogprobs: [[String: Float]]
    var textOffset: [Int]
    enum CodingKeys: String, CodingKey {
        case tokens, tokenLogprobs = "token_logprobs", topLogprobs = "top_logprobs", textOffset = "text_offset"
    }
}

struct CompletionChoice: Codable, Sendable {
    var index: Int
    var text: String
    var logprobs: CompletionLogprobs?
    var finishReason: String?
    enum CodingKeys: String, CodingKey { case index, text, logprobs, finishReason = "finish_reason" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(text, forKey: .text)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

struct Completion: Codable, Sendable {
    var id: String
    var object = "text_completion"
    var created: Int
    var model: String
    var systemFingerprint: String
    var choices: [CompletionChoice]
    var usage: Usage??
    enum CodingKeys: String, CodingKey {
        case id, object, created, model, systemFingerprint = "system_fingerprint", choices, usage
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(systemFingerprint, forKey: .systemFingerprint)
        try c.encode(choices, forKey: .choices)
        if let usage { try c.encode(usage, forKey: .usage) }
    }
}
