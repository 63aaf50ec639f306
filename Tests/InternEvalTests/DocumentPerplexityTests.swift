// The data pipeline's perplexity quality score: per-document perplexity against transformers' logits of the
// tiny fixture checkpoint, the max-token cut, the filter's threshold, and on the real demo model (when it is
// cached) that natural English scores lower than the same words shuffled.
import Foundation
import InternCore
import InternData
import InternEval
import InternModels
import InternTokenizer
import Testing

private struct Reference: Decodable {
    var ids: [Int32]
    var logits: [[Float]]
}

@Suite struct DocumentPerplexityTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/gqa1-hd32-f32")

    /// Byte-level ids for the 256-token fixture vocabulary.
    static let bytes: @Sendable (String) -> [Int32] = { text in text.utf8.map { Int32($0) } }

    @Test func perplexityOfAllTokensEqualsTransformers() throws {
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Self.directory.appendingPathComponent("reference.json")))
        let model = try InternLM2Model(directory: Self.directory, threadCount: 1)
        let ids = reference.ids
        let scorer = DocumentPerplexityScorer(model: model, maxTokens: ids.count, bos: nil) { _ in ids }
        var nll = 0.0
        for j in 0..<(ids.count - 1) {
            let row = reference.logits[j].map(Double.init)
            let m = row.max()!
            nll -= row[Int(ids[j + 1])] - (m + log(row.map { exp($0 - m) }.reduce(0, +)))
        }
        let expected = exp(nll / Double(ids.count - 1))
        let got = try #require(try scorer.perplexity("ignored"))
        #expect(abs(got - expected) / expected < 1e-4, "ours \(got), transformers \(expected)")
    }

    @Test func documentsAreCutToMaxTokensAndThresholdsApply() throws {
        let model = try InternLM2Model(directory: Self.directory, threadCount: 1)
        let short = DocumentPerplexityScorer(model: model, maxTokens: 12, bos: 1, tokenize: Self.bytes)
        let long = DocumentPerplexityScorer(model: model, maxTokens: 64, bos: 1, tokenize: Self.bytes)
        let text = "the cat sat on the mat and then the cat sat on the mat again"
        // With BOS, 12 tokens are BOS and the first 11 bytes.
        #expect(try short.perplexity(text) == long.perplexity(String(text.prefix(11))))
        #expect(try short.perplexity(text) != long.perplexity(text))
        #expect(try long.perplexity("") == nil)  // BOS alone: nothing to score

        let documents = ["aaaa aaaa aaaa aaaa aaaa", "q}7#Zx!~pL@2&vK%w^", "the cat sat on the mat"].enumerated().map {
            Document(id: "d\($0.offset)", text: $0.element)
        }
        let scores = try documents.map { try #require(try long.perplexity($0.text)) }
        #expect(Set(scores).count == 3 && scores.allSatisfy { $0 > 1 })
        let sorted = scores.sorted()
        let threshold = (sorted[0] + sorted[1]) / 2  // keeps only the lowest-perplexity document
        let filter = PerplexityFilter(maxPerplexity: threshold) { try long.perplexity($0) }
        var kept: [String] = []
        for d in documents {
            switch filter.apply(d) {
            case let .keep(doc, _):
                kept.append(doc.id)
                #expect(doc.meta.contains("\"perplexity\": "))
            case let .remove(rule): #expect(rule == "high_perplexity")
            }
        }
        #expect(kept == [documents[scores.firstIndex(of: sorted[0])!].id])
        guard case .remove(rule: "too_short") = filter.apply(Document(id: "e", text: "")) else {
            Issue.record("an empty document must be removed as too short")
            return
        }
    }

    /// The demo model (scripts/get-demo-model.sh) finds natural English far more predictable than the same
    /// words in a shuffled order. Skipped when the model is not cached.
    @Test func naturalEnglishScoresLowerThanShuffledWordsOnTheDemoModel() throws {
        let path = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/internkit/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let model = try ModelRegistry.load(path: path, threadCount: 2)
        let tokenizer = try GGUFTokenizer.load(from: GGUFFile(path: path))
        let scorer = DocumentPerplexityScorer(model: model, maxTokens: 96, bos: nil) { tokenizer.encode($0, addBOS: false, parseSpecialTokens: false) }
        let natural = """
            The river town woke slowly under a pale autumn sky, and the bakers were the first to open their doors. \
            Children walked to school along the old stone bridge while their parents argued about the price of bread.
            """
        var words = natural.split(separator: " ").map(String.init)
        var rng = SplitMix64(seed: 3)
        words.shuffle(using: &rng)
        let shuffled = words.joined(separator: " ")
        let p = try #require(try scorer.perplexity(natural)), q = try #require(try scorer.perplexity(shuffled))
        #expect(p * 3 < q, "natural \(p), shuffled \(q)")
    }
}
