// The engine alone: sampler chain parts, stop conditions, context limits, streaming and cancellation,
// driven by a scripted model whose next token is known, and the real InternLM2 tokenizer for text.
import Foundation
import InternCore
import InternEngine
import InternKernels
import InternModels
import InternTokenizer
import Testing

@testable import InternEngine

/// A model whose logits at each new position put all weight on the next id of `script` (then on
/// `fallback`), reading and extending the cache as a real model does.
final class ScriptedModel: LanguageModel, @unchecked Sendable {
    let script: [Int32]
    let promptLength: Int
    let vocabularySize: Int
    let maxSequenceLength: Int
    let kvCacheLayers = 1
    let kvCacheRowSize = 2
    var fallback: Int32 = 5
    /// Called at each forward (to cancel from inside).
    var onForward: (() -> Void)?

    init(script: [Int32], promptLength: Int, vocabularySize: Int = 92544, maxSequenceLength: Int = 64) {
        self.script = script
        self.promptLength = promptLength
        self.vocabularySize = vocabularySize
        self.maxSequenceLength = maxSequenceLength
    }

    func forward(_ tokens: UnsafeBufferPointer<Int32>, cache: any KVCache, allLogits: Bool, logits: UnsafeMutablePointer<Float>) throws {
        onForward?()
        try cache.reserve(cache.count + tokens.count)
        let next = cache.count + tokens.count - promptLength
        for i in 0..<vocabularySize { logits[i] = 0 }
        logits[Int(next < script.count ? script[next] : fallback)] = 10
        cache.commit(tokens.count)
    }
}

let tokenizerURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Assets/internlm2/tokenizer.model")

@Suite struct SamplerTests {
    @Test func greedyPicksTheFirstLargest() {
        let logits: [Float] = [0.5, 2, -1, 2]
        #expect(logits.withUnsafeBufferPointer { Sampler.argmax($0) } == 1)
    }

    @Test func topKKeepsKTokens() {
        var sampler = Sampler(settings: SamplingSettings(temperature: 1, topK: 2), seed: 1)
        let d = [Float](arrayLiteral: 1, 3, 2, 0).withUnsafeBufferPointer { sampler.distribution($0) }
        #expect(d.map(\.id) == [1, 2])
        #expect(abs(d[0].value - 1 / (1 + exp(-1))) < 1e-6)
    }

    @Test func topPKeepsTheSmallestSetReachingP() {
        // Probabilities 0.5, 0.25, 0.125, 0.125 (log-space logits).
        let logits: [Float] = [log(0.5), log(0.25), log(0.125), log(0.125)]
        var sampler = Sampler(settings: SamplingSettings(temperature: 1, topP: 0.7), seed: 1)
        let d = logits.withUnsafeBufferPointer { sampler.distribution($0) }
        #expect(d.map(\.id) == [0, 1])
        #expect(abs(d[0].value - 2.0 / 3) < 1e-5)
    }

    @Test func minPDropsTokensFarBelowTheTop() {
        let logits: [Float] = [log(0.6), log(0.3), log(0.1)]
        var sampler = Sampler(settings: SamplingSettings(temperature: 1, minP: 0.2), seed: 1)
        #expect(logits.withUnsafeBufferPointer { sampler.distribution($0) }.map(\.id) == [0, 1])
    }

    @Test func temperatureSharpensTheDistribution() {
        let logits: [Float] = [1, 0]
        var hot = Sampler(settings: SamplingSettings(temperature: 2), seed: 1)
        var cold = Sampler(settings: SamplingSettings(temperature: 0.5), seed: 1)
        let pHot = logits.withUnsafeBufferPointer { hot.distribution($0) }[0].value
        let pCold = logits.withUnsafeBufferPointer { cold.distribution($0) }[0].value
        #expect(abs(pHot - 1 / (1 + exp(-0.5))) < 1e-6)
        #expect(abs(pCold - 1 / (1 + exp(-2))) < 1e-6)
    }

    @Test func sameSeedSameSamplesAndFrequenciesFollowTheDistribution() {
        let logits: [Float] = [log(0.7), log(0.2), log(0.1)]
        func draws(_ seed: UInt64) -> [Int32] {
            var s = Sampler(settings: SamplingSettings(temperature: 1), seed: seed)
            return (0..<3000).map { _ in logits.withUnsafeBufferPointer { s.sample($0) } }
        }
        let a = draws(42)
        #expect(a == draws(42))
        #expect(a != draws(43))
        let share0 = Double(a.filter { $0 == 0 }.count) / 3000
        #expect(abs(share0 - 0.7) < 0.04)
    }

    @Test func penaltiesLowerRepeatedTokens() {
        var history = TokenHistory(prompt: [0])
        history.appendGenerated(1)
        history.appendGenerated(1)
        var logits: [Float] = [2, -2, 1, 1]
        logits.withUnsafeMutableBufferPointer { RepetitionPenalty(2).process($0, history: history) }
        #expect(logits == [1, -4, 1, 1])
        logits.withUnsafeMutableBufferPointer { PresencePenalty(0.5).process($0, history: history) }
        #expect(logits == [1, -4.5, 1, 1])
        logits.withUnsafeMutableBufferPointer { FrequencyPenalty(0.25).process($0, history: history) }
        #expect(logits == [1, -5, 1, 1])
    }

    @Test func invalidSettingsAreRejected() {
        #expect(throws: EngineError.self) { try SamplingSettings(temperature: -1).validate() }
        #expect(throws: EngineError.self) { try SamplingSettings(topP: 0).validate() }
        #expect(throws: EngineError.self) { try SamplingSettings(minP: 2).validate() }
    }
}

@Suite struct GenerationTests {
    func parameters(_ maxTokens: Int = 10) -> GenerationParameters {
        var p = GenerationParameters()
        p.maxTokens = maxTokens
        p.seed = 0
        return p
    }

    @Test func stopsOnEndOfSequenceAndImEnd() throws {
        for stop: Int32 in [2, 92542] {
            let model = ScriptedModel(script: [10, 11, stop, 12], promptLength: 3)
            let info = try Generator(model: model, tokenizer: nil).run(prompt: [1, 7, 8], parameters: parameters())
            #expect(info.tokenIDs == [10, 11])
            #expect(info.finishReason == .stop)
            #expect(info.promptTokens == 3 && info.completionTokens == 2)
        }
    }

    @Test func maxTokensGivesLength() throws {
        let model = ScriptedModel(script: [10, 11, 12, 13], promptLength: 1)
        let info = try Generator(model: model, tokenizer: nil).run(prompt: [1], parameters: parameters(3))
        #expect(info.tokenIDs == [10, 11, 12])
        #expect(info.finishReason == .length)
    }

    @Test func contextLimitGivesLengthWithoutOverrunningTheCache() throws {
        let model = ScriptedModel(script: [], promptLength: 2, maxSequenceLength: 6)
        let info = try Generator(model: model, tokenizer: nil).run(prompt: [1, 4], parameters: parameters(100))
        // Positions 0..<6: 2 prompt tokens, 4 fed-back tokens, and one last token that needs no position.
        #expect(info.completionTokens == 5)
        #expect(info.finishReason == .length)
    }

    @Test func promptLongerThanTheContextIsAnError() throws {
        let model = ScriptedModel(script: [], promptLength: 8, maxSequenceLength: 6)
        #expect(throws: EngineError.promptTooLong(promptTokens: 8, contextLength: 6)) {
            _ = try Generator(model: model, tokenizer: nil).run(prompt: Array(repeating: 1, count: 8), parameters: parameters())
        }
        var p = parameters()
        p.contextLength = 4
        #expect(throws: EngineError.promptTooLong(promptTokens: 5, contextLength: 4)) {
            _ = try Generator(model: model, tokenizer: nil).run(prompt: Array(repeating: 1, count: 5), parameters: p)
        }
        #expect(throws: EngineError.emptyPrompt) {
            _ = try Generator(model: model, tokenizer: nil).run(prompt: [], parameters: p)
        }
    }

    @Test func stopStringCutsTheTextAndIsNotEmitted() throws {
        let tokenizer = try SentencePieceTokenizer(contentsOf: tokenizerURL)
        let script = tokenizer.encode("Hello world. END of it all")
        let model = ScriptedModel(script: script, promptLength: 1)
        var p = parameters(40)
        p.stopStrings = ["END"]
        var deltas: [String] = []
        let info = try Generator(model: model, tokenizer: tokenizer).run(prompt: [1], parameters: p, emit: { deltas.append($0) })
        #expect(info.text == "Hello world. ")
        #expect(deltas.joined() == info.text)
        #expect(!deltas.joined().contains("E"))
        #expect(info.finishReason == .stop)
    }

    @Test func textWithoutStopMatchesDecode() throws {
        let tokenizer = try SentencePieceTokenizer(contentsOf: tokenizerURL)
        let script = tokenizer.encode("Streaming 你好 text, E and EN but no stop")
        let model = ScriptedModel(script: script + [2], promptLength: 1)
        var p = parameters(100)
        p.stopStrings = ["END"]
        var deltas: [String] = []
        let info = try Generator(model: model, tokenizer: tokenizer).run(prompt: [1], parameters: p, emit: { deltas.append($0) })
        #expect(info.tokenIDs == script)
        #expect(deltas.joined() == (try tokenizer.decode(script, rendering: .skip)))
        #expect(info.finishReason == .stop)
    }

    @Test func streamEndsWithDoneAndCountsTokens() async throws {
        let tokenizer = try SentencePieceTokenizer(contentsOf: tokenizerURL)
        let script = tokenizer.encode("one two three")
        let model = ScriptedModel(script: script + [92542], promptLength: 2)
        var text = ""
        var done: GenerationInfo?
        for try await event in Generator(model: model, tokenizer: tokenizer).generate(prompt: [1, 3], parameters: parameters(50)) {
            switch event {
            case .text(let t): text += t
            case .done(let info): done = info
            }
        }
        #expect(text == "one two three")
        #expect(done?.finishReason == .stop)
        #expect(done?.completionTokens == script.count)
    }

    @Test func cancellationEndsWithCancelled() throws {
        let model = ScriptedModel(script: [], promptLength: 1, maxSequenceLength: 10_000)
        var forwards = 0
        let info = try Generator(model: model, tokenizer: nil).run(
            prompt: [1], parameters: parameters(1000),
            isCancelled: {
                forwards += 1
                return forwards > 5
            })
        #expect(info.finishReason == .cancelled)
        #expect(info.completionTokens == 5)
    }

    @Test func cancellingTheConsumingTaskStopsTheStream() async throws {
        let model = ScriptedModel(script: [], promptLength: 1, maxSequenceLength: 1_000_000)
        let generator = Generator(model: model, tokenizer: nil)
        let task = Task {
            var last: GenerationInfo?
            for try await event in generator.generate(prompt: [1], parameters: parameters(900_000)) {
                if case .done(let info) = event { last = info }
            }
            return last
        }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let info = try await task.value
        // Either the loop saw the cancellation (cancelled) or the stream was torn down before `.done`.
        #expect(info == nil || info?.finishReason == .cancelled)
        #expect((info?.completionTokens ?? 0) < 900_000)
    }
}

@Suite struct KVCacheTests {
    /// Integers up to 127 in rows whose largest is 127 are exact in every type (q8_0's step is then 1).
    @Test(arguments: KVCacheType.allCases)
    func growsKeepingContentsAndRefusesBeyondCapacity(type: KVCacheType) throws {
        let rowSize = 32
        let cache = SimpleKVCache(layers: 2, rowSize: rowSize, capacity: 600, type: type)
        #expect(cache.type == type)
        try cache.reserve(2)
        func keyRow(_ l: Int, _ p: Int) -> [Float] { (0..<rowSize).map { $0 == 0 ? 127 : Float((l * 10 + p + $0) % 127) } }
        func valueRow(_ p: Int) -> [Float] { (0..<rowSize).map { $0 == 0 ? 127 : -Float((p * rowSize + $0) % 127) } }
        for l in 0..<2 {
            let keys = keyRow(l, 0) + keyRow(l, 1), values = valueRow(0) + valueRow(1)
            cache.layer(l).store(position: 0, keys: keys, values: values, rows: 2)
        }
        cache.commit(2)
        try cache.reserve(500)
        #expect(cache.allocated >= 500)
        var row = [Float](repeating: .nan, count: rowSize)
        for l in 0..<2 {
            for p in 0..<2 {
                cache.layer(l).key(p, into: &row)
                #expect(row == keyRow(l, p), "\(type) layer \(l) key \(p)")
                cache.layer(l).value(p, into: &row)
                #expect(row == valueRow(p), "\(type) layer \(l) value \(p)")
            }
        }
        #expect(throws: EngineError.contextFull(needed: 601, capacity: 600)) { try cache.reserve(601) }
        cache.reset()
        #expect(cache.count == 0)
    }
}

@Suite struct RadixSortTests {
    @Test func sortsByHighHalfStably() {
        var random = SeededGenerator(seed: 9)
        var keys = (0..<5000).map { i in UInt64(random.next() & 0xFFFF_0000_0000_0000 | UInt64(i)) }
        let expected = keys.enumerated().sorted { ($0.element >> 32, $0.offset) < ($1.element >> 32, $1.offset) }.map(\.element)
        var scratch: [UInt64] = []
        Sampler.radixSortByHighHalf(&keys, scratch: &scratch)
        #expect(keys == expected)
    }
}
