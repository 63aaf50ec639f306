// What the engine needs from any causal language model: a forward pass over new tokens that extends a
// KV cache and writes logits. InternLM2Model is the one implementation; the registry maps
// config.json's model_type to it.
public import InternCore

/// A causal language model that the engine can drive.
public protocol LanguageModel: AnyObject, Sendable {
    var vocabularySize: Int { get }
    /// The longest sequence the model supports (its rope scaling included).
    var maxSequenceLength: Int { get }
    /// Layers and floats per cached position (kvHeads × headDim) a KV cache must hold.
    var kvCacheLayers: Int { get }
    var kvCacheRowSize: Int { get }
    /// Elements of one KV head (a row holds kvCacheRowSize / kvCacheHeadDim heads).
    var kvCacheHeadDim: Int { get }

    /// Runs `tokens` at positions `cache.count...`, extends the cache, and writes logits: for every token
    /// (tokens.count × vocabularySize floats) when `allLogits`, else for the last one (vocabularySize).
    func forward(
        _ tokens: UnsafeBufferPointer<Int32>, cache: any KVCache, allLogits: Bool,
        logits: UnsafeMutablePointer<Float>
    ) throws

    /// Batched decode: advances several sequences by one token each in one pass. Row b runs `tokens[b]`
    /// at position `caches[b].count`, extends `caches[b]` by one, and writes its logits to
    /// `logits + b * vocabularySize`. Each row's logits must be bitwise those of `forward` with the same
    /// single token and cache, whatever the other rows are (batch invariance).
    func forwardBatch(
        _ tokens: UnsafeBufferPointer<Int32>, caches: [any KVCache], logits: UnsafeMutablePointer<Float>
    ) throws
}

extension LanguageModel {
    /// One head a row, for models that do not say.
    public var kvCacheHeadDim: Int { kvCacheRowSize }

    /// One `forward` per row: trivially batch invariant, for models without a batched kernel path.
    public func forwardBatch(
        _ tokens: UnsafeBufferPointer<Int32>, caches: [any KVCache], logits: UnsafeMutablePointer<Float>
    ) throws {
        precondition(tokens.count == caches.count, "one cache per token")
        for b in tokens.indices {
            try forward(
                UnsafeBufferPointer(rebasing: tokens[b..<(b + 1)]), cache: caches[b], allLogits: false,
                logits: logits + b * vocabularySize)
        }
    }
}
