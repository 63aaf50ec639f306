// The key/value cache the model writes to and attends over, as a protocol so the model file carries
// no cache policy (mlx-lm `cache.py`; llama.cpp `llama-kv-cache.h`). The model asks for room, stores the
// new positions' keys and values (already rotated, as f32) at `count..<count+T` through the layer's
// `KVLayer`, attention reads `0..<count+T` in the stored type, and the caller commits the new positions
// once every layer has run. Variants live in InternEngine.
public import InternKernels

/// Per-layer key and value storage for one sequence: rows of `kvDim` = kvHeads × headDim elements in one
/// `KVCacheType`.
public protocol KVCache: AnyObject {
    /// Positions filled so far (the offset of the next token).
    var count: Int { get }
    /// The most positions this cache will ever hold.
    var capacity: Int { get }
    /// Makes room for positions `0..<positions`; throws when that exceeds `capacity`.
    func reserve(_ positions: Int) throws
    /// How the rows are stored.
    var type: KVCacheType { get }
    /// A layer's keys and values over the reserved positions; valid until the next `reserve`.
    func layer(_ index: Int) -> KVLayer
    /// Marks `newPositions` more positions as filled.
    func commit(_ newPositions: Int)
    /// Forgets every position from `count` on (keeps its storage), so a shared prefix can be reused.
    func truncate(to count: Int)
    /// Empties the cache (keeps its storage).
    func reset()
}
