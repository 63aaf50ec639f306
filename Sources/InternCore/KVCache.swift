// The key/value cache the model writes to and attends over, as a protocol so the model file carries
// no cache policy (mlx-lm `cache.py`; llama.cpp `llama-kv-cache.h`). The model asks for room, writes the
// new positions' keys and values (already rotated) at `count..<count+T`, reads `0..<count+T`, and the
// caller commits the new positions once every layer has run. Variants live in InternEngine.

/// Per-layer key and value storage for one sequence, f32 rows of `kvDim` = kvHeads × headDim.
public protocol KVCache: AnyObject {
    /// Positions filled so far (the offset of the next token).
    var count: Int { get }
    /// The most positions this cache will ever hold.
    var capacity: Int { get }
    /// Makes room for positions `0..<positions`; throws when that exceeds `capacity`.
    func reserve(_ positions: Int) throws
    /// Keys of a layer: (reserved positions, kvDim); valid until the next `reserve`.
    func keys(layer: Int) -> UnsafeMutablePointer<Float>
    /// Values of a layer: (reserved positions, kvDim); valid until the next `reserve`.
    func values(layer: Int) -> UnsafeMutablePointer<Float>
    /// Marks `newPositions` more positions as filled.
    func commit(_ newPositions: Int)
    /// Forgets every position from `count` on (keeps its storage), so a shared prefix can be reused.
    func truncate(to count: Int)
    /// Empties the cache (keeps its storage).
    func reset()
}
