// Continuous batching: one scheduler thread owns the model and every sequence's KV cache. Requests are
// Sendable values queued under a lock; each iteration of the thread admits waiting requests (while the
// batch has a free slot and the KV budget has room for the request's worst case, prompt + max_tokens),
// runs at most `prefillChunk` prompt tokens of the sequences still prefilling (chunked prefill, so a
// long prompt costs the running streams one chunk per token instead of its whole prefill), then
// advances every decoding sequence by one token in a single `forwardBatch`. A sequence whose consumer
// went away (client disconnect) is dropped at the next iteration, which frees its slot and its cache.
// Per-sequence sampling, penalties, stop tokens and stop strings work exactly as `Generator.run`
// (llama.cpp server slots; vLLM's scheduler with chunked prefill, without paging).
//
// Batch invariance under chunking: a prompt is always cut at the same places, multiples of
// `prefillChunk` from its start, whatever else is running; only how many of its chunks run per
// iteration depends on the load. A chunk's logits do not depend on which iteration runs it, so a
// request's tokens and logprobs stay bitwise the same under any load.
public import Foundation
import InternCore
public import InternKernels
public import InternModels
public import InternTokenizer

// MARK: - Requests and events

/// One generation request as the scheduler runs it.
public struct ScheduledRequest: Sendable {
    public var prompt: [Int32]
    public var parameters: GenerationParameters
    /// Log-probabilities to report per generated token: nil for none, else how many alternatives (0–20).
    public var topLogprobs: Int?
    /// Special tokens decoded as their names instead of skipped (InternLM2's action tokens, so that the
    /// chat output parser sees `<|action_start|><|plugin|>`).
    public var namedSpecialTokens: Set<Int32>

    public init(prompt: [Int32], parameters: GenerationParameters, topLogprobs: Int? = nil, namedSpecialTokens: Set<Int32> = []) {
        self.prompt = prompt
        self.parameters = parameters
        self.topLogprobs = topLogprobs
        self.namedSpecialTokens = namedSpecialTokens
    }
}

/// The log-probability of a generated token and of the most likely alternatives at its step, from the
/// logits after the penalties and before temperature (what OpenAI's `logprobs` reports).
public struct TokenLogprob: Sendable, Equatable {
    public struct Alternative: Sendable, Equatable {
        public var id: Int32
        public var logprob: Float
    }
    public var id: Int32
    public var logprob: Float
    /// Most likely first.
    public var top: [Alternative]
}

/// What a scheduled request streams.
public enum SchedulerEvent: Sendable {
    /// One generated token (nil for the final flush) and the text that became safe to show (may be empty:
    /// text is held back while it could start a stop string or an incomplete character).
    case token(id: Int32?, text: String, logprob: TokenLogprob?)
    case done(GenerationInfo)
}

/// Why a request was not queued.
public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    case queueFull(capacity: Int)
    /// Prompt + max_tokens positions exceed what the KV budget can ever hold.
    case exceedsKVBudget(needed: Int, budget: Int)
    case shuttingDown

    public var description: String {
        switch self {
        case .queueFull(let capacity): "the request queue is full (\(capacity) waiting); retry later"
        case .exceedsKVBudget(let needed, let budget):
            "the request needs \(needed) KV cache positions (prompt + max_tokens), more than the server's budget of \(budget)"
        case .shuttingDown: "the server is shutting down"
        }
    }
}

// MARK: - Memory plan

/// What fits in memory, computed once at start and exported by the server.
public struct MemoryPlan: Sendable, Equatable {
    public var weightsBytes: Int
    /// How the caches store keys and values.
    public var kvCacheType: KVCacheType
    /// Keys and values of every layer for one position, in `kvCacheType`.
    public var kvBytesPerToken: Int
    public var kvBudgetBytes: Int
    /// Concurrent positions (over all sequences) the KV budget holds.
    public var kvBudgetTokens: Int { kvBudgetBytes / max(1, kvBytesPerToken) }
    public var maxBatch: Int
    public var contextLength: Int
    public var queueCapacity: Int

    /// - Parameters:
    ///   - kvBudgetBytes: the KV budget; default: enough for `maxBatch` full contexts, capped at half of
    ///     the physical memory left after the weights.
    public init(
        model: any LanguageModel, weightsBytes: Int, maxBatch: Int, contextLength: Int? = nil,
        kvBudgetBytes: Int? = nil, queueCapacity: Int = 256, kvCacheType: KVCacheType = .f16,
        physicalMemory: Int = Int(ProcessInfo.processInfo.physicalMemory)
    ) {
        self.weightsBytes = weightsBytes
        self.kvCacheType = kvCacheType
        kvBytesPerToken = model.kvCacheLayers * kvCacheType.bytesPerPosition(rowSize: model.kvCacheRowSize)
        self.maxBatch = max(1, maxBatch)
        self.contextLength = min(contextLength ?? model.maxSequenceLength, model.maxSequenceLength)
        let full = self.maxBatch * self.contextLength * kvBytesPerToken
        let available = max(0, (physicalMemory - weightsBytes) / 2)
        self.kvBudgetBytes = kvBudgetBytes ?? min(full, available)
        self.queueCapacity = queueCapacity
    }

    public var summary: String {
        func gib(_ bytes: Int) -> String { String(format: "%.3f GiB", Double(bytes) / 1_073_741_824) }
        return
            "weights \(gib(weightsBytes)) (\(weightsBytes) B); KV cache \(kvCacheType.rawValue), \(kvBytesPerToken) B/token, budget \(gib(kvBudgetBytes)) = \(kvBudgetTokens) concurrent tokens; batch ≤ \(maxBatch), context \(contextLength), queue ≤ \(queueCapacity)"
    }
}

/// A snapshot of the scheduler's load.
public struct SchedulerStats: Sendable, Equatable {
    public var queued = 0
    public var active = 0
    /// KV positions reserved by admitted requests (their prompt + max_tokens).
    public var kvReservedTokens = 0
    /// KV positions filled now.
    public var kvUsedTokens = 0
    /// Rows of the last batched decode step.
    public var lastBatchSize = 0
    /// Prompt tokens prefilled in the iteration of the last decode step (before it).
    public var lastPrefillTokens = 0
    /// Prompt chunks prefilled in all.
    public var prefillChunks = 0
    public var steps = 0
}

// MARK: - Scheduler

/// Owns the model and the KV caches and runs continuous batching on its own thread.
public final class Scheduler: @unchecked Sendable {
    public let model: any LanguageModel
    public let tokenizer: any Tokenizer
    public let plan: MemoryPlan
    /// Most prompt tokens one iteration prefills, and the size of the chunks prompts are cut into; 0 runs
    /// each prompt whole.
    public let prefillChunk: Int
    /// Called on the scheduler thread after each decode step with the batch size and the stats.
    private let onStep: (@Sendable (Int, SchedulerStats) -> Void)?

    // Shared state, under `condition`.
    private let condition = NSCondition()
    private var waiting: [Entry] = []
    private var cancelled: Set<Int> = []
    private var nextID = 0
    private var stopping = false
    private var finished = false
    private var shared = SchedulerStats()

    // Scheduler-thread state.
    /// Sequences that have their first token: one row each in the next decode step.
    private var active: [RunningSequence] = []
    /// Admitted sequences whose prompt is not all in the cache yet, first come first served.
    private var prefilling: [RunningSequence] = []
    private var prefillTokensThisIteration = 0
    private var thread: Thread?

    public init(
        model: any LanguageModel, tokenizer: any Tokenizer, plan: MemoryPlan, prefillChunk: Int = 256,
        onStep: (@Sendable (Int, SchedulerStats) -> Void)? = nil
    ) {
        self.model = model
        self.tokenizer = tokenizer
        self.plan = plan
        self.prefillChunk = max(0, prefillChunk)
        self.onStep = onStep
    }

    /// Starts the scheduler thread (once).
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard thread == nil else { return }
        let thread = Thread(block: { [self] in loop() })
        thread.name = "intern-scheduler"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Stops admitting, cancels every queued and running request (each ends with `.done` and finish reason
    /// `cancelled`) and waits for the thread to end.
    public func shutdown() async {
        guard beginShutdown() else { return }
        while !hasFinished() { try? await Task.sleep(for: .milliseconds(5)) }
    }

    /// Sets the stop flag; returns whether a thread runs that must be waited for (without one, queued
    /// requests are ended here).
    private func beginShutdown() -> Bool {
        condition.lock()
        stopping = true
        let hasThread = thread != nil
        let queued = hasThread ? [] : waiting
        if !hasThread { waiting.removeAll() }
        condition.broadcast()
        condition.unlock()
        for entry in queued { entry.continuation.finish(throwing: SchedulerError.shuttingDown) }
        return hasThread
    }

    private func hasFinished() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return finished
    }

    public var stats: SchedulerStats {
        condition.lock()
        defer { condition.unlock() }
        return shared
    }

    /// Queues a request. The stream yields its tokens and a final `.done`; ending the consuming task or
    /// dropping the stream cancels the request and frees its slot at the next step.
    public func submit(_ request: ScheduledRequest) throws(SchedulerError) -> AsyncThrowingStream<SchedulerEvent, any Error> {
        let maxTokens = min(request.parameters.maxTokens, max(0, plan.contextLength - request.prompt.count))
        let reservation = request.prompt.count + maxTokens
        guard reservation <= plan.kvBudgetTokens else {
            throw .exceedsKVBudget(needed: reservation, budget: plan.kvBudgetTokens)
        }
        let (stream, continuation) = AsyncThrowingStream<SchedulerEvent, any Error>.makeStream()
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw .shuttingDown }
        // The queue holds `queueCapacity` requests beyond those that free slots will take at the next step.
        guard waiting.count < plan.queueCapacity + max(0, plan.maxBatch - shared.active) else {
            throw .queueFull(capacity: plan.queueCapacity)
        }
        let id = nextID
        nextID += 1
        waiting.append(Entry(id: id, request: request, reservation: reservation, continuation: continuation))
        shared.queued = waiting.count
        continuation.onTermination = { [weak self] reason in
            guard case .cancelled = reason else { return }
            self?.cancel(id)
        }
        condition.signal()
        return stream
    }

    private func cancel(_ id: Int) {
        condition.lock()
        defer { condition.unlock() }
        if let index = waiting.firstIndex(where: { $0.id == id }) {
            waiting.remove(at: index)
            shared.queued = waiting.count
        } else {
            cancelled.insert(id)
        }
        condition.signal()
    }

    // MARK: Loop

    private func loop() {
        while true {
            condition.lock()
            while waiting.isEmpty && active.isEmpty && prefilling.isEmpty && cancelled.isEmpty && !stopping { condition.wait() }
            let dropped = cancelled
            cancelled.removeAll()
            var admitted: [Entry] = []
            if stopping {
                let queued = waiting
                waiting.removeAll()
                shared.queued = 0
                condition.unlock()
                for entry in queued { entry.continuation.finish(throwing: SchedulerError.shuttingDown) }
                for sequence in prefilling + active { finish(sequence, reason: .cancelled) }
                active.removeAll()
                prefilling.removeAll()
                condition.lock()
                shared.active = 0
                shared.kvReservedTokens = 0
                shared.kvUsedTokens = 0
                finished = true
                condition.unlock()
                return
            }
            while let first = waiting.first, active.count + prefilling.count + admitted.count < plan.maxBatch,
                shared.kvReservedTokens + first.reservation <= plan.kvBudgetTokens
            {
                waiting.removeFirst()
                shared.kvReservedTokens += first.reservation
                admitted.append(first)
            }
            shared.queued = waiting.count
            condition.unlock()

            if !dropped.isEmpty {
                for sequence in prefilling + active where dropped.contains(sequence.id) { release(sequence, reason: .cancelled) }
            }
            for entry in admitted { begin(entry) }
            prefillTokensThisIteration = 0
            prefill()
            step()
            publish()
        }
    }

    /// Checks an admitted request and queues it for prefill.
    private func begin(_ entry: Entry) {
        let sequence = RunningSequence(entry: entry, model: model, tokenizer: tokenizer, contextLength: plan.contextLength, cacheType: plan.kvCacheType)
        let request = entry.request
        do {
            guard !request.prompt.isEmpty else { throw EngineError.emptyPrompt }
            try request.parameters.sampling.validate()
            guard request.prompt.count <= plan.contextLength else {
                throw EngineError.promptTooLong(promptTokens: request.prompt.count, contextLength: plan.contextLength)
            }
        } catch {
            fail(sequence, error)
            return
        }
        if sequence.maxTokens == 0 {
            release(sequence, reason: .length)
            return
        }
        prefilling.append(sequence)
    }

    /// Runs whole chunks of the waiting prompts, oldest first, while they fit this iteration's budget of
    /// `prefillChunk` tokens (at least one chunk). A sequence whose prompt is done samples its first token
    /// and joins the decode batch.
    private func prefill() {
        var budget = prefillChunk > 0 ? prefillChunk : Int.max
        var ran = 0
        while let sequence = prefilling.first {
            let prompt = sequence.request.prompt
            let end = prefillChunk > 0 ? min(prompt.count, sequence.prefilled + prefillChunk) : prompt.count
            let count = end - sequence.prefilled
            guard ran == 0 || count <= budget else { break }
            do {
                try prompt.withUnsafeBufferPointer { ids in
                    try sequence.logits.withUnsafeMutableBufferPointer {
                        try model.forward(
                            UnsafeBufferPointer(rebasing: ids[sequence.prefilled..<end]), cache: sequence.cache, allLogits: false,
                            logits: $0.baseAddress!)
                    }
                }
            } catch {
                fail(sequence, error)
                continue
            }
            sequence.prefilled = end
            ran += 1
            budget -= count
            prefillTokensThisIteration += count
            condition.lock()
            shared.prefillChunks += 1
            condition.unlock()
            guard end == prompt.count else { continue }
            prefilling.removeFirst()
            sequence.promptSeconds = RunningSequence.seconds(ContinuousClock.now - sequence.start)
            sequence.decodeStart = .now
            sequence.logits.withUnsafeMutableBufferPointer { consume(sequence, $0) }
        }
    }

    /// One batched decode step over every sequence waiting for its next token.
    private func step() {
        let rows = active.filter { $0.pendingToken != nil }
        guard !rows.isEmpty else { return }
        let vocab = model.vocabularySize
        var logits = [Float](repeating: 0, count: rows.count * vocab)
        let tokens = rows.map { $0.pendingToken! }
        do {
            try tokens.withUnsafeBufferPointer { ids in
                try logits.withUnsafeMutableBufferPointer {
                    try model.forwardBatch(ids, caches: rows.map(\.cache), logits: $0.baseAddress!)
                }
            }
        } catch {
            for sequence in rows { fail(sequence, error) }
            return
        }
        logits.withUnsafeMutableBufferPointer { buffer in
            for (b, sequence) in rows.enumerated() {
                sequence.pendingToken = nil
                consume(sequence, UnsafeMutableBufferPointer(rebasing: buffer[(b * vocab)..<((b + 1) * vocab)]))
            }
        }
        condition.lock()
        shared.lastBatchSize = rows.count
        shared.lastPrefillTokens = prefillTokensThisIteration
        shared.steps += 1
        condition.unlock()
        onStep?(rows.count, stats)
    }

    /// Samples the next token of `sequence` from its logits and either finishes it or queues the token
    /// for the next decode step (the loop of `Generator.run`, one iteration).
    private func consume(_ sequence: RunningSequence, _ logits: UnsafeMutableBufferPointer<Float>) {
        let parameters = sequence.request.parameters
        for p in sequence.processors { p.process(logits, history: sequence.history) }
        let token = sequence.sampler.sample(UnsafeBufferPointer(logits))
        if parameters.stopTokenIDs.contains(token) {
            release(sequence, reason: .stop)
            return
        }
        let logprob = sequence.request.topLogprobs.map { Self.logprob(of: token, in: UnsafeBufferPointer(logits), top: $0) }
        sequence.generated.append(token)
        sequence.history.appendGenerated(token)
        let piece = sequence.detokenizer.append(token)
        let (safe, stopped) = sequence.stops.append(piece)
        sequence.text += safe
        sequence.continuation.yield(.token(id: token, text: safe, logprob: logprob))
        if stopped {
            release(sequence, reason: .stop)
        } else if sequence.generated.count >= sequence.maxTokens || sequence.cache.count + 1 > plan.contextLength {
            release(sequence, reason: .length)
        } else {
            sequence.pendingToken = token
            if !active.contains(where: { $0 === sequence }) { active.append(sequence) }
        }
    }

    /// Ends a sequence: flushes held-back text, reports `.done`, frees its slot, reservation and cache.
    /// The slot and reservation are returned before `.done` goes out, so a client that reads the stats
    /// after its response never sees its own request still counted.
    private func release(_ sequence: RunningSequence, reason: FinishReason) {
        active.removeAll { $0 === sequence }
        prefilling.removeAll { $0 === sequence }
        condition.lock()
        shared.kvReservedTokens -= sequence.reservation
        condition.unlock()
        publish()
        finish(sequence, reason: reason)
    }

    private func finish(_ sequence: RunningSequence, reason: FinishReason) {
        var finish = reason
        if finish != .stop || !sequence.stops.stopped {
            let rest = sequence.detokenizer.finish()
            let (safe, stopped) = sequence.stops.append(rest)
            var tail = safe
            if stopped { finish = .stop } else { tail += sequence.stops.flush() }
            if !tail.isEmpty {
                sequence.text += tail
                sequence.continuation.yield(.token(id: nil, text: tail, logprob: nil))
            }
        }
        let info = GenerationInfo(
            finishReason: finish, promptTokens: sequence.request.prompt.count, reusedPromptTokens: 0, completionTokens: sequence.generated.count,
            tokenIDs: sequence.generated, text: sequence.text, promptSeconds: sequence.promptSeconds,
            generationSeconds: sequence.decodeStart.map { RunningSequence.seconds(ContinuousClock.now - $0) } ?? 0)
        sequence.continuation.yield(.done(info))
        sequence.continuation.finish()
    }

    private func fail(_ sequence: RunningSequence, _ error: any Error) {
        active.removeAll { $0 === sequence }
        prefilling.removeAll { $0 === sequence }
        condition.lock()
        shared.kvReservedTokens -= sequence.reservation
        condition.unlock()
        publish()
        sequence.continuation.finish(throwing: error)
    }

    private func publish() {
        let used = (prefilling + active).reduce(0) { $0 + $1.cache.count }
        condition.lock()
        shared.active = active.count + prefilling.count
        shared.kvUsedTokens = used
        condition.unlock()
    }

    /// log-softmax of the chosen token and the `top` most likely ones.
    static func logprob(of token: Int32, in logits: UnsafeBufferPointer<Float>, top: Int) -> TokenLogprob {
        var maximum = -Float.infinity
        for l in logits where l > maximum { maximum = l }
        var sum: Double = 0
        for l in logits { sum += Double(expf(l - maximum)) }
        let logZ = maximum + Float(log(sum))
        var best: [TokenLogprob.Alternative] = []
        if top > 0 {
            for (i, l) in logits.enumerated() where best.count < top || l > best[best.count - 1].logprob {
                let item = TokenLogprob.Alternative(id: Int32(i), logprob: l)
                let at = best.firstIndex { $0.logprob < l } ?? best.count
                best.insert(item, at: at)
                if best.count > top { best.removeLast() }
            }
            for i in best.indices { best[i].logprob -= logZ }
        }
        return TokenLogprob(id: token, logprob: logits[Int(token)] - logZ, top: best)
    }
}

// MARK: - RunningSequence

/// A queued request with its id, KV reservation and output stream.
private struct Entry {
    let id: Int
    let request: ScheduledRequest
    let reservation: Int
    let continuation: AsyncThrowingStream<SchedulerEvent, any Error>.Continuation
}

/// One running request: its cache, sampler chain and text state. Touched only by the scheduler thread.
private final class RunningSequence {
    let id: Int
    let request: ScheduledRequest
    let reservation: Int
    let maxTokens: Int
    let continuation: AsyncThrowingStream<SchedulerEvent, any Error>.Continuation
    let cache: SimpleKVCache
    var logits: [Float]
    let processors: [any LogitProcessor]
    var sampler: Sampler
    var history: TokenHistory
    var stops: StopStringFilter
    var detokenizer: StreamingDetokenizer
    var generated: [Int32] = []
    var text = ""
    var pendingToken: Int32?
    /// Prompt tokens already in the cache.
    var prefilled = 0
    let start = ContinuousClock.now
    var decodeStart: ContinuousClock.Instant?
    var promptSeconds = 0.0

    init(entry: Entry, model: any LanguageModel, tokenizer: any Tokenizer, contextLength: Int, cacheType: KVCacheType) {
        id = entry.id
        request = entry.request
        reservation = entry.reservation
        maxTokens = entry.reservation - entry.request.prompt.count
        continuation = entry.continuation
        // Capacity = the reservation, so the doubling growth never allocates beyond what admission counted.
        cache = SimpleKVCache(model: model, capacity: max(1, entry.reservation), type: cacheType)
        logits = [Float](repeating: 0, count: model.vocabularySize)
        let p = entry.request.parameters
        var processors: [any LogitProcessor] = []
        if p.repetitionPenalty != 1 { processors.append(RepetitionPenalty(p.repetitionPenalty)) }
        if p.presencePenalty != 0 { processors.append(PresencePenalty(p.presencePenalty)) }
        if p.frequencyPenalty != 0 { processors.append(FrequencyPenalty(p.frequencyPenalty)) }
        self.processors = processors
        sampler = Sampler(settings: p.sampling, seed: p.seed ?? UInt64.random(in: 0...UInt64.max))
        history = TokenHistory(prompt: entry.request.prompt)
        stops = StopStringFilter(stopStrings: p.stopStrings)
        let named = entry.request.namedSpecialTokens
        detokenizer = StreamingDetokenizer(
            tokenizer: named.isEmpty ? tokenizer : NamingSpecialTokens(base: tokenizer, named: named))
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
}

/// Decodes the given special tokens by name and defers everything else to the wrapped tokenizer.
private struct NamingSpecialTokens: Tokenizer {
    let base: any Tokenizer
    let named: Set<Int32>
    var vocabularySize: Int { base.vocabularySize }
    var bosTokenID: TokenID? { base.bosTokenID }
    var eosTokenID: TokenID? { base.eosTokenID }
    var specialTokens: [SpecialToken] { base.specialTokens }
    func encode(_ text: String, addBOS: Bool, parseSpecialTokens: Bool) -> [TokenID] {
        base.encode(text, addBOS: addBOS, parseSpecialTokens: parseSpecialTokens)
    }
    func bytes(for id: TokenID, rendering: SpecialTokenRendering, atStart: Bool) -> [UInt8] {
        named.contains(id) ? base.bytes(for: id, rendering: .names, atStart: atStart) : base.bytes(for: id, rendering: rendering, atStart: atStart)
    }
    func piece(for id: TokenID) -> String? { base.piece(for: id) }
}
