// Generation: prefill the prompt (the model chunks it), then decode one token at a time through the
// sampler chain until a stop token, a stop string, the token limit or the context limit; text is streamed
// through the StreamingDetokenizer and held back while it could still be the start of a stop string.
// `generate` wraps the synchronous loop in an AsyncThrowingStream (mlx-swift-lm `Generation`,
// `GenerateCompletionInfo`); cancellation is checked once per token.
import Foundation
import InternCore
public import InternKernels
public import InternModels
public import InternTokenizer

/// Everything that shapes one generation request.
public struct GenerationParameters: Sendable {
    public var maxTokens: Int = 256
    public var sampling = SamplingSettings()
    public var repetitionPenalty: Float = 1
    public var presencePenalty: Float = 0
    public var frequencyPenalty: Float = 0
    /// Seed of the sampler; a random one when nil.
    public var seed: UInt64?
    /// Generation stops when one of these is sampled (not emitted): `</s>` and `<|im_end|>`.
    public var stopTokenIDs: Set<Int32> = [2, 92542]
    /// Generation stops when the text contains one of these (the string and what follows are not emitted).
    public var stopStrings: [String] = []
    /// Positions the sequence may use (prompt + completion); the model's maximum when nil.
    public var contextLength: Int?
    /// How a cache made for this request stores keys and values (a session's cache keeps its own type).
    public var kvCacheType: KVCacheType = .f16

    public init() {}
}

/// Why generation ended.
public enum FinishReason: String, Sendable, Equatable {
    case stop, length, cancelled
}

/// The summary at the end of a generation.
public struct GenerationInfo: Sendable, Equatable {
    public var finishReason: FinishReason
    public var promptTokens: Int
    /// Prompt tokens whose keys and values came from a session's cache instead of being computed.
    public var reusedPromptTokens: Int
    public var completionTokens: Int
    /// The generated ids (a final stop token not included).
    public var tokenIDs: [Int32]
    /// The full generated text (stop string cut).
    public var text: String
    public var promptSeconds: Double
    public var generationSeconds: Double

    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens) / promptSeconds : 0 }
    public var tokensPerSecond: Double { generationSeconds > 0 ? Double(completionTokens) / generationSeconds : 0 }
}

/// A KV cache kept across calls of `Generator.run`, as a chat keeps it across turns: the longest prefix
/// that the next prompt shares with what the cache holds is not computed again.
public final class GenerationSession: @unchecked Sendable {
    let cache: SimpleKVCache
    /// The tokens whose keys and values the cache holds, in order.
    public fileprivate(set) var cachedTokens: [Int32] = []

    /// A session for `model` holding at most `contextLength` positions (the model's maximum when nil).
    public init(model: any LanguageModel, contextLength: Int? = nil, kvCacheType: KVCacheType = .f16) {
        cache = SimpleKVCache(model: model, capacity: contextLength, type: kvCacheType)
    }

    /// Forgets everything cached.
    public func reset() {
        cache.reset()
        cachedTokens = []
    }
}

/// One event of a generation stream.
public enum GenerationEvent: Sendable {
    case text(String)
    case done(GenerationInfo)
}

/// Drives a model to generate from a prompt.
public struct Generator: Sendable {
    public let model: any LanguageModel
    /// Turns ids into text; without one, no text is produced and stop strings are not checked.
    public let tokenizer: (any Tokenizer)?

    public init(model: any LanguageModel, tokenizer: (any Tokenizer)?) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Generates as an async stream of text deltas and a final `.done`. Cancelling the consuming task (or
    /// dropping the stream) ends it with finish reason `cancelled` at the next token.
    public func generate(prompt: [Int32], parameters: GenerationParameters) -> AsyncThrowingStream<GenerationEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        let generator = self
        let task = Task.detached {
            do {
                let info = try generator.run(prompt: prompt, parameters: parameters, isCancelled: { Task.isCancelled }) {
                    continuation.yield(.text($0))
                }
                continuation.yield(.done(info))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// The synchronous generation loop: `emit` receives text deltas; returns the summary. With a
    /// `session`, its cache is reused for the prompt's prefix it already holds and keeps this call's tokens.
    public func run(
        prompt: [Int32], parameters: GenerationParameters, session: GenerationSession? = nil,
        isCancelled: () -> Bool = { false }, emit: (String) -> Void = { _ in }
    ) throws -> GenerationInfo {
        guard !prompt.isEmpty else { throw EngineError.emptyPrompt }
        try parameters.sampling.validate()
        guard parameters.maxTokens >= 0 else {
            throw EngineError.invalidParameter(name: "max_tokens", value: "\(parameters.maxTokens)", reason: "must be ≥ 0")
        }
        var contextLength = min(parameters.contextLength ?? model.maxSequenceLength, model.maxSequenceLength)
        if let session { contextLength = min(contextLength, session.cache.capacity) }
        guard prompt.count <= contextLength else {
            throw EngineError.promptTooLong(promptTokens: prompt.count, contextLength: contextLength)
        }
        let cache: SimpleKVCache
        var reused = 0
        if let session {
            // Keep the shared prefix, but always run the prompt's last token: its logits pick the first token.
            let common = zip(session.cachedTokens, prompt).prefix { $0 == $1 }.count
            reused = min(common, prompt.count - 1)
            session.cache.truncate(to: reused)
            session.cachedTokens.removeLast(session.cachedTokens.count - reused)
            cache = session.cache
        } else {
            cache = SimpleKVCache(model: model, capacity: contextLength, type: parameters.kvCacheType)
        }
        var processors: [any LogitProcessor] = []
        if parameters.repetitionPenalty != 1 { processors.append(RepetitionPenalty(parameters.repetitionPenalty)) }
        if parameters.presencePenalty != 0 { processors.append(PresencePenalty(parameters.presencePenalty)) }
        if parameters.frequencyPenalty != 0 { processors.append(FrequencyPenalty(parameters.frequencyPenalty)) }
        var sampler = Sampler(settings: parameters.sampling, seed: parameters.seed ?? UInt64.random(in: 0...UInt64.max))
        var history = TokenHistory(prompt: prompt)
        var stops = StopStringFilter(stopStrings: tokenizer == nil ? [] : parameters.stopStrings)
        var detokenizer = tokenizer.map { StreamingDetokenizer(tokenizer: $0) }

        var logits = [Float](repeating: 0, count: model.vocabularySize)
        var generated: [Int32] = []
        var text = ""
        let clock = ContinuousClock()
        let promptStart = clock.now
        var promptSeconds = 0.0
        var finish = FinishReason.length

        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
        func deliver(_ piece: String) {
            guard !piece.isEmpty else { return }
            text += piece
            emit(piece)
        }

        if parameters.maxTokens > 0 {
            try prompt[reused...].withUnsafeBufferPointer { ids in
                try logits.withUnsafeMutableBufferPointer { try model.forward(ids, cache: cache, allLogits: false, logits: $0.baseAddress!) }
            }
            session?.cachedTokens += prompt[reused...]
        }
        promptSeconds = seconds(clock.now - promptStart)
        let decodeStart = clock.now
        var token: Int32 = 0
        loop: while generated.count < parameters.maxTokens {
            if isCancelled() {
                finish = .cancelled
                break
            }
            logits.withUnsafeMutableBufferPointer { buffer in
                for p in processors { p.process(buffer, history: history) }
                token = sampler.sample(UnsafeBufferPointer(buffer))
            }
            if parameters.stopTokenIDs.contains(token) {
                finish = .stop
                break
            }
            generated.append(token)
            history.appendGenerated(token)
            if detokenizer != nil {
                let (safe, stopped) = stops.append(detokenizer!.append(token))
                deliver(safe)
                if stopped {
                    finish = .stop
                    break loop
                }
            }
            if generated.count == parameters.maxTokens { break }
            if cache.count + 1 > contextLength {
                finish = .length
                break
            }
            try [token].withUnsafeBufferPointer { ids in
                try logits.withUnsafeMutableBufferPointer { try model.forward(ids, cache: cache, allLogits: false, logits: $0.baseAddress!) }
            }
            session?.cachedTokens.append(token)
        }
        if detokenizer != nil, finish != .stop || stops.stopped == false {
            let (safe, stopped) = stops.append(detokenizer!.finish())
            deliver(safe)
            if stopped { finish = .stop } else { deliver(stops.flush()) }
        }
        return GenerationInfo(
            finishReason: finish, promptTokens: prompt.count, reusedPromptTokens: reused, completionTokens: generated.count,
            tokenIDs: generated,
            text: text, promptSeconds: promptSeconds, generationSeconds: seconds(clock.now - decodeStart))
    }
}

/// Holds back streamed text that could be the beginning of a stop string and detects a completed one.
struct StopStringFilter {
    let stopStrings: [[UInt8]]
    private var pending: [UInt8] = []
    private(set) var stopped = false

    init(stopStrings: [String]) { self.stopStrings = stopStrings.filter { !$0.isEmpty }.map { Array($0.utf8) } }

    /// Adds a delta; returns the text safe to emit and whether a stop string was completed (the text before
    /// it is returned, it and the rest are dropped).
    mutating func append(_ delta: String) -> (String, Bool) {
        guard !stopped else { return ("", true) }
        pending += Array(delta.utf8)
        guard !stopStrings.isEmpty else {
            defer { pending.removeAll() }
            return (String(decoding: pending, as: UTF8.self), false)
        }
        // The earliest complete stop string.
        var cut: Int?
        for stop in stopStrings where stop.count <= pending.count {
            for start in 0...(pending.count - stop.count) where pending[start..<(start + stop.count)].elementsEqual(stop) {
                cut = min(cut ?? start, start)
                break
            }
        }
        if let cut {
            stopped = true
            let out = String(decoding: pending[..<cut], as: UTF8.self)
            pending.removeAll()
            return (out, true)
        }
        // Keep the longest tail that is a proper prefix of a stop string.
        var keep = 0
        for stop in stopStrings {
            for length in stride(from: min(stop.count - 1, pending.count), to: keep, by: -1)
            where pending[(pending.count - length)...].elementsEqual(stop[..<length]) {
                keep = length
                break
            }
        }
        let out = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return (out, false)
    }

    /// What is still held back, at the end of the stream.
    mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}
