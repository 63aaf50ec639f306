// Perplexity scoring against transformers: the tiny fixture checkpoint's reference logits (computed by
// LlamaForCausalLM, scripts/fixtures/make_model_fixtures.py) give the expected NLL of the scored half.
import Foundation
import InternEval
import InternModels
import Testing

private struct Reference: Decodable {
    var ids: [Int32]
    var logits: [[Float]]
}

@Suite struct PerplexityTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/gqa1-hd32-f32")

    @Test func scoresTheSecondHalfOfEachWindowLikeLlamaPerplexity() throws {
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Self.directory.appendingPathComponent("reference.json")))
        let model = try InternLM2Model(directory: Self.directory, threadCount: 2)
        let T = reference.ids.count
        let result = try evaluatePerplexity(model: model, tokens: reference.ids, context: T, bos: nil)
        // Expected from transformers' logits: positions T/2 ..< T-1 predict the next id.
        var nll = 0.0
        for j in (T / 2)..<(T - 1) {
            let row = reference.logits[j].map(Double.init)
            let m = row.max()!
            let logSum = m + log(row.map { exp($0 - m) }.reduce(0, +))
            nll -= row[Int(reference.ids[j + 1])] - logSum
        }
        let expected = nll / Double(T - 1 - T / 2)
        #expect(result.chunks == 1 && result.scoredTokens == T - 1 - T / 2)
        #expect(abs(result.meanNLL - expected) < 1e-4, "ours \(result.meanNLL), transformers \(expected)")
        #expect(result.meanKLDivergence == nil)
    }

    @Test func aModelAgreesWithItself() throws {
        let model = try InternLM2Model(directory: Self.directory, threadCount: 1)
        let other = try InternLM2Model(directory: Self.directory, threadCount: 2)
        let ids: [Int32] = (0..<40).map { Int32(($0 * 37 + 11) % 256) }
        let result = try evaluatePerplexity(model: model, reference: other, tokens: ids, context: 16, bos: 1)
        #expect(result.chunks == 2 && result.scoredTokens == 2 * 7)
        #expect(result.meanKLDivergence! < 1e-9 && result.top1Agreement == 1)
    }

    @Test func shortTextIsAnError() throws {
        let model = try InternLM2Model(directory: Self.directory, threadCount: 1)
        #expect(throws: EvaluationError.textTooShort(tokens: 3, context: 8)) {
            try evaluatePerplexity(model: model, tokens: [1, 2, 3], context: 8, bos: nil)
        }
    }
}
