import Foundation
// Perplexity of a text under a model, chunked exactly as llama.cpp's `llama-perplexity` does
// (tools/perplexity/perplexity.cpp `perplexity`): the tokens are cut into windows of `context` tokens,
// the first token of each window becomes BOS when the tokenizer adds one, and only the second half of
// each window is scored, so every scored token sees at least context/2 tokens before it. With a
// reference model it also measures how far the model's distributions are from the reference's
// (mean KL divergence and top-1 agreement on the same positions), as `--kl-divergence` does.
public import InternEngine
public import InternKernels
public import InternModels

/// What `evaluatePerplexity` measured.
public struct PerplexityResult: Sendable, Equatable {
    public var chunks: Int
    public var scoredTokens: Int
    /// Mean negative log-likelihood (nats) of the scored tokens.
    public var meanNLL: Double
    public var perplexity: Double { exp(meanNLL) }
    /// Mean KL(reference ‖ model) in nats, with a reference model.
    public var meanKLDivergence: Double?
    /// Fraction of positions where both models rank the same token first, with a reference model.
    public var top1Agreement: Double?
}

/// Why perplexity cannot be computed.
public enum EvaluationError: Error, Equatable, CustomStringConvertible {
    case textTooShort(tokens: Int, context: Int)
    case vocabularyMismatch(model: Int, reference: Int)

    public var description: String {
        switch self {
        case .textTooShort(let tokens, let context):
            "the text has \(tokens) tokens, fewer than one window of \(context); give a longer text or a smaller --context"
        case .vocabularyMismatch(let m, let r): "the model has \(m) tokens in its vocabulary but the reference has \(r)"
        }
    }
}

/// Scores `tokens` in windows of `context`.
/// - Parameters:
///   - bos: replaces the first token of each window (llama.cpp does this when the vocabulary adds BOS).
///   - maxChunks: stop after this many windows (all when nil).
///   - kvCacheType: how both models' caches store keys and values.
///   - progress: called after each window with (done, total) and the running result.
public func evaluatePerplexity(
    model: any LanguageModel, reference: (any LanguageModel)? = nil, tokens: [Int32], context: Int, bos: Int32?,
    maxChunks: Int? = nil, kvCacheType: KVCacheType = .f16, progress: ((Int, Int, PerplexityResult) -> Void)? = nil
) throws -> PerplexityResult {
    let available = tokens.count / context
    guard available > 0, context >= 4 else { throw EvaluationError.textTooShort(tokens: tokens.count, context: context) }
    if let reference, reference.vocabularySize != model.vocabularySize {
        throw EvaluationError.vocabularyMismatch(model: model.vocabularySize, reference: reference.vocabularySize)
    }
    let chunks = min(available, maxChunks ?? available)
    let vocab = model.vocabularySize
    var logits = [Float](repeating: 0, count: context * vocab)
    var referenceLogits = reference == nil ? [] : [Float](repeating: 0, count: context * vocab)
    let cache = SimpleKVCache(model: model, capacity: context, type: kvCacheType)
    let referenceCache = reference.map { SimpleKVCache(model: $0, capacity: context, type: kvCacheType) }
    var result = PerplexityResult(chunks: 0, scoredTokens: 0, meanNLL: 0)
    var nll = 0.0, kl = 0.0, agree = 0
    let first = context / 2
    for chunk in 0..<chunks {
        var window = Array(tokens[(chunk * context)..<((chunk + 1) * context)])
        if let bos { window[0] = bos }
        cache.reset()
        try window.withUnsafeBufferPointer { ids in
            try logits.withUnsafeMutableBufferPointer { try model.forward(ids, cache: cache, allLogits: true, logits: $0.baseAddress!) }
            if let reference, let referenceCache {
                referenceCache.reset()
                try referenceLogits.withUnsafeMutableBufferPointer {
                    try reference.forward(ids, cache: referenceCache, allLogits: true, logits: $0.baseAddress!)
                }
            }
        }
        for j in first..<(context - 1) {
            let next = Int(window[j + 1])
            logits.withUnsafeBufferPointer { l in
                let row = UnsafeBufferPointer(rebasing: l[(j * vocab)..<((j + 1) * vocab)])
                nll -= logSoftmax(row, at: next)
                if reference != nil {
                    referenceLogits.withUnsafeBufferPointer { r in
                        let refRow = UnsafeBufferPointer(rebasing: r[(j * vocab)..<((j + 1) * vocab)])
                        kl += klDivergence(reference: refRow, model: row)
                        if argmax(refRow) == argmax(row) { agree += 1 }
                    }
                }
            }
        }
        result.chunks = chunk + 1
        result.scoredTokens += context - 1 - first
        result.meanNLL = nll / Double(result.scoredTokens)
        if reference != nil {
            result.meanKLDivergence = kl / Double(result.scoredTokens)
            result.top1Agreement = Double(agree) / Double(result.scoredTokens)
        }
        progress?(chunk + 1, chunks, result)
    }
    return result
}

/// log softmax(row)[index], in Double.
func logSoftmax(_ row: UnsafeBufferPointer<Float>, at index: Int) -> Double {
    let maxValue = Double(row.max()!)
    var sum = 0.0
    for v in row { sum += exp(Double(v) - maxValue) }
    return Double(row[index]) - maxValue - log(sum)
}

/// KL(P ‖ Q) for P = softmax(reference), Q = softmax(model), in nats.
func klDivergence(reference: UnsafeBufferPointer<Float>, model: UnsafeBufferPointer<Float>) -> Double {
    let pMax = Double(reference.max()!), qMax = Double(model.max()!)
    var pSum = 0.0, qSum = 0.0
    for i in 0..<reference.count {
        pSum += exp(Double(reference[i]) - pMax)
        qSum += exp(Double(model[i]) - qMax)
    }
    let pLog = pMax + log(pSum), qLog = qMax + log(qSum)
    var kl = 0.0
    for i in 0..<reference.count {
        let lp = Double(reference[i]) - pLog
        kl += exp(lp) * (lp - (Double(model[i]) - qLog))
    }
    return max(0, kl)
}

func argmax(_ row: UnsafeBufferPointer<Float>) -> Int {
    var best = 0
    for i in 1..<row.count where row[i] > row[best] { best = i }
    return best
}
