// Per-document perplexity for data filtering, as CCNet (Wenzek et al. 2019) scores Common Crawl with a
// language model trained on high-quality text: a document the model finds predictable (low perplexity) reads
// like that text; menus, lists of keywords and shuffled words score high. Each document is cut to its first
// `maxTokens` tokens (the cost of a forward pass grows with length) and every token after the first is scored.
import Foundation
import InternEngine
public import InternModels

/// Scores texts by their perplexity under a model. One forward pass at a time (the model's own threads do
/// the work), so concurrent callers wait on a lock.
public final class DocumentPerplexityScorer: @unchecked Sendable {
    public let model: any LanguageModel
    public let maxTokens: Int
    let bos: Int32?
    let tokenize: @Sendable (String) -> [Int32]
    let lock = NSLock()
    var logits: [Float]
    let cache: SimpleKVCache

    /// - Parameters:
    ///   - maxTokens: tokens scored per document at most (the BOS token included).
    ///   - bos: put before every document when the vocabulary has one, so the first word is scored too.
    ///   - tokenize: text to token ids (without BOS).
    public init(model: any LanguageModel, maxTokens: Int = 256, bos: Int32?, tokenize: @escaping @Sendable (String) -> [Int32]) {
        precondition(maxTokens >= 2)
        self.model = model
        self.maxTokens = min(maxTokens, model.maxSequenceLength)
        self.bos = bos
        self.tokenize = tokenize
        logits = [Float](repeating: 0, count: self.maxTokens * model.vocabularySize)
        cache = SimpleKVCache(model: model, capacity: self.maxTokens)
    }

    /// exp(mean negative log-likelihood) of the document's tokens after the first; nil when it has fewer
    /// than two tokens (with BOS).
    public func perplexity(_ text: String) throws -> Double? {
        var ids = bos.map { [$0] } ?? []
        ids += tokenize(text).prefix(maxTokens - ids.count)
        guard ids.count >= 2 else { return nil }
        lock.lock()
        defer { lock.unlock() }
        cache.reset()
        let vocab = model.vocabularySize
        try ids.withUnsafeBufferPointer { p in
            try logits.withUnsafeMutableBufferPointer { try model.forward(p, cache: cache, allLogits: true, logits: $0.baseAddress!) }
        }
        var nll = 0.0
        logits.withUnsafeBufferPointer { l in
            for j in 0..<(ids.count - 1) {
                nll -= logSoftmax(UnsafeBufferPointer(rebasing: l[(j * vocab)..<((j + 1) * vocab)]), at: Int(ids[j + 1]))
            }
        }
        return exp(nll / Double(ids.count - 1))
    }
}
