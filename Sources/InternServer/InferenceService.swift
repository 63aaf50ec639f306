// The engine as a ServiceLifecycle service: it owns the scheduler (and through it the model and every
// KV cache), turns parsed OpenAI requests into scheduled ones (chat template, tool declarations, forced
// tool-call prefix, context checks), and stops the scheduler on graceful shutdown, which ends every
// in-flight request with finish reason `cancelled` (Hummingbird `todos-postgres-tutorial` runs its
// database client the same way).
import Foundation
public import InternChat
public import InternEngine
public import InternModels
public import InternTokenizer
public import Logging
public import ServiceLifecycle

/// The model behind the endpoints, with its scheduler.
public final class InferenceService: Service, Sendable {
    public let scheduler: Scheduler
    public let tokenizer: any Tokenizer
    public let modelName: String
    public let metrics: ServerMetrics
    let logger: Logger
    let created = Int(Date().timeIntervalSince1970)
    let format: InternLM2ChatFormat
    /// Special tokens the chat output parser must see by name.
    let actionTokenIDs: Set<Int32>

    /// - Parameters:
    ///   - format: the chat template (default InternLM2's).
    ///   - prefillChunk: prompt tokens prefilled per scheduler iteration, between decode steps (0: whole prompts).
    public init(
        model: any LanguageModel, tokenizer: any Tokenizer, modelName: String, plan: MemoryPlan, format: InternLM2ChatFormat? = nil,
        prefillChunk: Int = 256, logger: Logger
    ) {
        let metrics = ServerMetrics(plan: plan)
        self.metrics = metrics
        scheduler = Scheduler(model: model, tokenizer: tokenizer, plan: plan, prefillChunk: prefillChunk) { size, stats in
            metrics.batchSize.record(Double(size))
            metrics.update(stats)
        }
        self.tokenizer = tokenizer
        self.modelName = modelName
        self.logger = logger
        self.format = format ?? InternLM2ChatFormat(tokenizer: tokenizer)
        actionTokenIDs = Set(
            ["<|action_start|>", "<|action_end|>", "<|plugin|>", "<|interpreter|>"].compactMap {
                tokenizer.specialTokenID($0)
            })
    }

    public var plan: MemoryPlan { scheduler.plan }

    /// Runs the scheduler until graceful shutdown.
    public func run() async throws {
        scheduler.start()
        logger.info("engine started", metadata: ["plan": "\(plan.summary)"])
        try? await gracefulShutdown()
        logger.info("engine stopping: cancelling in-flight requests", metadata: ["active": "\(scheduler.stats.active)"])
        await scheduler.shutdown()
    }

    func checkModel(_ name: String) throws(OpenAIError) {
        guard name == modelName else { throw .modelNotFound(name, available: modelName) }
    }

    // MARK: Preparing requests

    /// A request ready for the scheduler, plus what the response writer needs.
    struct Prepared: Sendable {
        var scheduled: ScheduledRequest
        var n: Int
        /// Text the model was forced to start with (a tool-call prefix), fed to the output parser first.
        var forcedPrefix: String
        var parsesToolCalls: Bool
    }

    func prepare(chat request: ChatCompletionRequest) throws(OpenAIError) -> Prepared {
        try checkModel(request.sampling.model)
        let tools = request.toolChoice == .none ? [] : request.tools
        if !tools.isEmpty, let missing = ["<|plugin|>", "<|action_start|>", "<|action_end|>"].first(where: { tokenizer.specialTokenID($0) == nil }) {
            throw .invalidRequest(
                "'\(modelName)' cannot call tools: its tokenizer has no \(missing) token (tool calls use InternLM2's action tokens).",
                param: "tools", code: "tools_not_supported")
        }
        var segments = format.segments(for: request.messages, tools: tools)
        var forced: [PromptSegment] = []
        switch request.toolChoice {
        case .required: forced = [.special("<|action_start|>"), .special("<|plugin|>"), .text("\n")]
        case .function(let name):
            forced = [
                .special("<|action_start|>"), .special("<|plugin|>"),
                .text("\n{\"name\": \(JSONValue.string(name).pythonJSON), \"parameters\": "),
            ]
        case .none, .auto: break
        }
        segments += forced
        let prompt: [Int32]
        do {
            prompt = try format.ids(of: segments)
        } catch {
            throw .server("the tokenizer cannot render the chat format: \(error)")
        }
        var parameters = try generationParameters(for: request.sampling, promptTokens: prompt.count)
        parameters.stopTokenIDs = request.sampling.ignoreEOS ? [] : Set(format.stopTokenIDs)
        let scheduled = ScheduledRequest(
            prompt: prompt, parameters: parameters, topLogprobs: request.sampling.logprobs ? request.sampling.topLogprobs : nil,
            namedSpecialTokens: tools.isEmpty ? [] : actionTokenIDs)
        return Prepared(
            scheduled: scheduled, n: request.sampling.n, forcedPrefix: InternLM2ChatFormat.text(of: forced),
            parsesToolCalls: !tools.isEmpty)
    }

    func prepare(completion request: CompletionRequest) throws(OpenAIError) -> Prepared {
        try checkModel(request.sampling.model)
        let prompt: [Int32]
        switch request.prompt {
        case .text(let text): prompt = tokenizer.encode(text, addBOS: true, parseSpecialTokens: true)
        case .ids(let ids):
            if let bad = ids.firstIndex(where: { $0 < 0 || Int($0) >= tokenizer.vocabularySize }) {
                throw .invalidRequest(
                    "'prompt[\(bad)]' is \(ids[bad]), outside the vocabulary (0..<\(tokenizer.vocabularySize)).",
                    param: "prompt[\(bad)]", code: "invalid_value")
            }
            prompt = ids
        }
        guard !prompt.isEmpty else {
            throw .invalidRequest("'prompt' has no tokens.", param: "prompt", code: "invalid_value")
        }
        var parameters = try generationParameters(for: request.sampling, promptTokens: prompt.count)
        parameters.stopTokenIDs = request.sampling.ignoreEOS ? [] : Set([tokenizer.eosTokenID].compactMap { $0 })
        let scheduled = ScheduledRequest(
            prompt: prompt, parameters: parameters,
            topLogprobs: request.sampling.logprobs ? request.sampling.topLogprobs : nil)
        return Prepared(scheduled: scheduled, n: request.sampling.n, forcedPrefix: "", parsesToolCalls: false)
    }

    /// Sampling parameters, with the context check: prompt + max_tokens must fit the context.
    func generationParameters(for s: SamplingRequest, promptTokens: Int) throws(OpenAIError) -> GenerationParameters {
        let context = plan.contextLength
        if let maxTokens = s.maxTokens {
            guard promptTokens + maxTokens <= context else {
                throw .invalidRequest(
                    "This model's maximum context length is \(context) tokens. However, you requested \(promptTokens + maxTokens) tokens (\(promptTokens) in the prompt, \(maxTokens) in the completion). Please reduce the prompt or max_tokens.",
                    param: "max_tokens", code: "context_length_exceeded")
            }
        } else {
            guard promptTokens < context else {
                throw .invalidRequest(
                    "This model's maximum context length is \(context) tokens. However, the prompt has \(promptTokens) tokens, leaving none for the completion.",
                    param: "messages", code: "context_length_exceeded")
            }
        }
        var p = GenerationParameters()
        p.maxTokens = s.maxTokens ?? (context - promptTokens)
        p.sampling = SamplingSettings(temperature: Float(s.temperature), topK: s.topK, topP: Float(s.topP), minP: Float(s.minP))
        p.repetitionPenalty = Float(s.repetitionPenalty)
        p.presencePenalty = Float(s.presencePenalty)
        p.frequencyPenalty = Float(s.frequencyPenalty)
        p.seed = s.seed
        p.stopStrings = s.stop
        p.contextLength = context
        return p
    }

    /// Queues the `n` choices of a request (choice i samples with seed + i).
    func submit(_ prepared: Prepared) throws(OpenAIError) -> [AsyncThrowingStream<SchedulerEvent, any Error>] {
        var streams: [AsyncThrowingStream<SchedulerEvent, any Error>] = []
        for i in 0..<prepared.n {
            var request = prepared.scheduled
            request.parameters.seed = request.parameters.seed.map { $0 &+ UInt64(i) }
            do {
                streams.append(try scheduler.submit(request))
            } catch {
                streams.removeAll()  // dropping the streams cancels the choices already queued
                switch error {
                case .queueFull: throw .queueFull(error.description)
                case .exceedsKVBudget: throw .invalidRequest(error.description, param: "max_tokens", code: "context_length_exceeded")
                case .shuttingDown:
                    throw OpenAIError(
                        status: .serviceUnavailable, message: error.description, type: "server_error",
                        code: "shutting_down")
                }
            }
        }
        metrics.promptTokens.increment(by: Int64(prepared.scheduled.prompt.count * prepared.n))
        return streams
    }
}
