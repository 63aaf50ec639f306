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

    /// Runs `tokens` at positions `cache.count...`, extends the cache, and writes logits: for every token
    /// (tokens.count × vocabularySize floats) when `allLogits`, else for the last one (vocabularySize).
    func forward(
        _ tokens: UnsafeBufferPointer<Int32>, cache: any KVCache, allLogits: Bool,
        logits: UnsafeMutablePointer<Float>
    ) throws
}
