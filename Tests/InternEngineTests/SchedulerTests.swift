// The continuous-batching scheduler on a real (tiny, random) InternLM2 fixture: a seeded request gives
// bitwise the same tokens and logprobs alone and amid concurrent requests, greedy output equals
// `Generator.run`, admission respects the batch and KV limits, a dropped stream frees its slot, and a long
// prompt is prefilled in chunks between the decode steps of the running streams, with the same numbers.
import Foundation
import InternCore
import InternEngine
import InternKernels
import InternModels
import InternTokenizer
import Testing

let schedulerFixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/models/gqa2-hd32-bf16")

/// Everything one request streamed.
struct Collected: Equatable {
    var ids: [Int32] = []
    var logprobs: [TokenLogprob] = []
    var text = ""
    var finish: FinishReason?
}

func collect(_ stream: AsyncThrowingStream<SchedulerEvent, any Error>) async throws -> Collected {
    var out = Collected()
    for try await event in stream {
        switch event {
        case .token(let id, let text, let logprob):
            if let id { out.ids.append(id) }
            if let logprob { out.logprobs.append(logprob) }
            out.text += text
        case .done(let info):
            out.finish = info.finishReason
            #expect(info.tokenIDs == out.ids)
            #expect(info.text == out.text)
        }
    }
    return out
}

func waitUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<2000 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
}

@Suite(.serialized) struct SchedulerTests {
    static let tokenizer = try! SentencePieceTokenizer(contentsOf: tokenizerURL)

    func makeScheduler(
        maxBatch: Int = 16, kvBudgetTokens: Int? = nil, prefillChunk: Int = 256, onStep: (@Sendable (Int, SchedulerStats) -> Void)? = nil
    ) throws -> Scheduler {
        let model = try InternLM2Model(directory: schedulerFixture, threadCount: 2)
        let plan = MemoryPlan(
            model: model, weightsBytes: 0, maxBatch: maxBatch,
            kvBudgetBytes: kvBudgetTokens.map { $0 * model.kvCacheLayers * KVCacheType.f16.bytesPerPosition(rowSize: model.kvCacheRowSize) })
        let scheduler = Scheduler(model: model, tokenizer: Self.tokenizer, plan: plan, prefillChunk: prefillChunk, onStep: onStep)
        scheduler.start()
        return scheduler
    }

    func request(prompt: [Int32], seed: UInt64, maxTokens: Int = 20, temperature: Float = 0.9) -> ScheduledRequest {
        var p = GenerationParameters()
        p.maxTokens = maxTokens
        p.sampling = SamplingSettings(temperature: temperature, topK: 40, topP: 0.95)
        p.seed = seed
        p.stopTokenIDs = []
        return ScheduledRequest(prompt: prompt, parameters: p, topLogprobs: 3)
    }

    @Test func seededRequestIsBitwiseTheSameAloneAndInABatch() async throws {
        let scheduler = try makeScheduler()
        let probe = request(prompt: [1, 40, 41, 42, 43], seed: 7)
        let alone = try await collect(try scheduler.submit(probe))
        #expect(alone.ids.count == 20)
        // The same request amid 8 others of other lengths and seeds, all in flight together.
        let crowd = try await withThrowingTaskGroup(of: (Int, Collected).self) { group in
            for i in 0..<9 {
                let r =
                    i == 4
                    ? probe
                    : request(
                        prompt: [1] + (0..<(3 + i * 2)).map { Int32(50 + $0 * 7 + i) }, seed: UInt64(100 + i),
                        maxTokens: 12 + i * 3)
                let stream = try scheduler.submit(r)
                group.addTask { (i, try await collect(stream)) }
            }
            var results: [Int: Collected] = [:]
            for try await (i, c) in group { results[i] = c }
            return results
        }
        let inBatch = crowd[4]!
        #expect(inBatch.ids == alone.ids)
        #expect(inBatch.logprobs.map { $0.logprob.bitPattern } == alone.logprobs.map { $0.logprob.bitPattern })
        #expect(inBatch.logprobs == alone.logprobs)
        #expect(scheduler.stats.steps > 0)
        await scheduler.shutdown()
    }

    @Test func greedyOutputEqualsGeneratorRun() async throws {
        let scheduler = try makeScheduler(maxBatch: 3)
        let model = try InternLM2Model(directory: schedulerFixture, threadCount: 1)
        let prompts: [[Int32]] = [[1, 9, 10], [1, 77, 78, 79, 80, 81], [1, 200]]
        let streams = try prompts.map { try scheduler.submit(request(prompt: $0, seed: 1, maxTokens: 15, temperature: 0)) }
        for (prompt, stream) in zip(prompts, streams) {
            let got = try await collect(stream)
            var p = GenerationParameters()
            p.maxTokens = 15
            p.stopTokenIDs = []
            let expected = try Generator(model: model, tokenizer: Self.tokenizer).run(prompt: prompt, parameters: p)
            #expect(got.ids == expected.tokenIDs)
            #expect(got.text == expected.text)
            #expect(got.finish == .length)
        }
        await scheduler.shutdown()
    }

    @Test func admissionRespectsTheKVBudget() async throws {
        // Room for one request of 5 + 20 positions at a time: the second waits, then runs.
        let scheduler = try makeScheduler(kvBudgetTokens: 30)
        let a = try scheduler.submit(request(prompt: [1, 2, 3, 4, 5], seed: 1))
        let b = try scheduler.submit(request(prompt: [1, 2, 3, 4, 6], seed: 2))
        #expect(throws: SchedulerError.exceedsKVBudget(needed: 45, budget: 30)) {
            _ = try scheduler.submit(request(prompt: [1, 2, 3, 4, 5], seed: 1, maxTokens: 40))
        }
        async let ra = collect(a)
        async let rb = collect(b)
        let (x, y) = try await (ra, rb)
        #expect(x.ids.count == 20 && y.ids.count == 20)
        try await waitUntil { scheduler.stats.kvReservedTokens == 0 }
        #expect(scheduler.stats.kvReservedTokens == 0)
        await scheduler.shutdown()
    }

    @Test func droppedStreamFreesItsSlotAndReservation() async throws {
        let scheduler = try makeScheduler()
        let task = Task {
            var n = 0
            for try await event in try scheduler.submit(request(prompt: [1, 5, 6], seed: 3, maxTokens: 50)) {
                if case .token = event { n += 1 }
                if n == 2 { break }  // leaves the stream: the request is cancelled
            }
        }
        try await task.value
        try await waitUntil { scheduler.stats.active == 0 && scheduler.stats.kvReservedTokens == 0 }
        #expect(scheduler.stats.active == 0)
        #expect(scheduler.stats.kvReservedTokens == 0)
        #expect(scheduler.stats.kvUsedTokens == 0)
        await scheduler.shutdown()
    }

    @Test func shutdownEndsRunningRequestsAsCancelled() async throws {
        // 10 ms per decode step: 55 tokens take far longer than the shutdown below.
        let scheduler = try makeScheduler(onStep: { _, _ in Thread.sleep(forTimeInterval: 0.01) })
        let stream = try scheduler.submit(request(prompt: [1, 5, 6], seed: 3, maxTokens: 55))
        var iterator = stream.makeAsyncIterator()
        _ = try await iterator.next()
        await scheduler.shutdown()
        var finish: FinishReason?
        while let event = try await iterator.next() { if case .done(let info) = event { finish = info.finishReason } }
        #expect(finish == .cancelled)
        #expect(throws: SchedulerError.shuttingDown) { _ = try scheduler.submit(request(prompt: [1], seed: 1)) }
    }

    @Test func chunkedPrefillGivesBitwiseTheSameTokensAndLogprobs() async throws {
        let probe = request(prompt: [1] + (0..<22).map { Int32(60 + $0 * 3) }, seed: 5)
        var results: [Collected] = []
        for chunk in [0, 4, 7] {
            let scheduler = try makeScheduler(prefillChunk: chunk)
            results.append(try await collect(try scheduler.submit(probe)))
            await scheduler.shutdown()
        }
        #expect(results[0].ids.count == 20)
        for other in results.dropFirst() {
            #expect(other.ids == results[0].ids)
            #expect(other.logprobs.map { $0.logprob.bitPattern } == results[0].logprobs.map { $0.logprob.bitPattern })
        }
    }

    @Test func longPromptIsPrefilledInChunksBetweenDecodeSteps() async throws {
        // The scheduler thread holds its first decode step (the short request's) until the long request is
        // queued, so the order of events below does not depend on timing.
        let log = StepLog()
        let scheduler = try makeScheduler(prefillChunk: 8) { size, stats in log.record(size, stats.lastPrefillTokens) }
        let short = try scheduler.submit(request(prompt: [1, 5, 6], seed: 3, maxTokens: 40))
        try await waitUntil { log.count > 0 }
        let long = try scheduler.submit(request(prompt: [1] + (0..<47).map { Int32(30 + $0) }, seed: 4, maxTokens: 5))
        log.open()
        async let shortResult = collect(short)
        let longResult = try await collect(long)
        let shortIDs = try await shortResult.ids
        #expect(shortIDs.count == 40)
        #expect(longResult.ids.count == 5)
        let steps = log.entries
        #expect(steps.first?.prefill == 3)  // the short prompt, whole, before its first decode step
        // The 48-token prompt ran as 6 chunks of 8, each in an iteration that also advanced the short stream.
        let chunks = steps.dropFirst().filter { $0.prefill > 0 }
        #expect(chunks.count == 6)
        #expect(chunks.allSatisfy { $0.prefill == 8 && $0.batch >= 1 })
        await scheduler.shutdown()
    }
}

/// Decode steps seen by `onStep`; the first one blocks until `open()`.
final class StepLog: @unchecked Sendable {
    private let lock = NSCondition()
    private var isOpen = false
    private var items: [(batch: Int, prefill: Int)] = []

    func record(_ batch: Int, _ prefill: Int) {
        lock.lock()
        items.append((batch, prefill))
        lock.broadcast()
        while !isOpen { lock.wait() }
        lock.unlock()
    }

    func open() {
        lock.lock()
        isOpen = true
        lock.broadcast()
        lock.unlock()
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return items.count
    }

    var entries: [(batch: Int, prefill: Int)] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}
