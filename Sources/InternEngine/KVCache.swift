// The simple KV cache: f32 keys and values per layer, grown by doubling up to a fixed capacity so a
// short chat does not pay for the model's whole context (a 1.8B model's 32k context is 6.4 GB in f32).
// Other variants (f16, int8, rotating) get their own types against InternCore's `KVCache` protocol.
public import InternCore
public import InternModels

/// An f32 KV cache for one sequence.
public final class SimpleKVCache: KVCache {
    public let layers: Int
    /// Floats per position: kvHeads × headDim.
    public let rowSize: Int
    public let capacity: Int
    public private(set) var count = 0
    /// Positions allocated now (≤ capacity).
    public private(set) var allocated = 0
    private var keyStorage: [UnsafeMutablePointer<Float>]  // per layer (allocated, rowSize)
    private var valueStorage: [UnsafeMutablePointer<Float>]  // per layer (allocated, rowSize)

    public init(layers: Int, rowSize: Int, capacity: Int) {
        self.layers = layers
        self.rowSize = rowSize
        self.capacity = capacity
        keyStorage = (0..<layers).map { _ in .allocate(capacity: 1) }
        valueStorage = (0..<layers).map { _ in .allocate(capacity: 1) }
    }

    /// A cache shaped for `model`, holding at most `capacity` positions (the model's maximum by default).
    public convenience init(model: any LanguageModel, capacity: Int? = nil) {
        self.init(
            layers: model.kvCacheLayers, rowSize: model.kvCacheRowSize,
            capacity: min(capacity ?? model.maxSequenceLength, model.maxSequenceLength))
    }

    deinit {
        for p in keyStorage + valueStorage { p.deallocate() }
    }

    public func reserve(_ positions: Int) throws {
        guard positions <= capacity else { throw EngineError.contextFull(needed: positions, capacity: capacity) }
        guard positions > allocated else { return }
        let newSize = min(capacity, max(positions, allocated * 2, 256))
        for l in 0..<layers {
            keyStorage[l] = grow(keyStorage[l], to: newSize)
            valueStorage[l] = grow(valueStorage[l], to: newSize)
        }
        allocated = newSize
    }

    private func grow(_ old: UnsafeMutablePointer<Float>, to positions: Int) -> UnsafeMutablePointer<Float> {
        let new = UnsafeMutablePointer<Float>.allocate(capacity: positions * rowSize)
        new.update(from: old, count: count * rowSize)
        old.deallocate()
        return new
    }

    public func keys(layer: Int) -> UnsafeMutablePointer<Float> { keyStorage[layer] }
    public func values(layer: Int) -> UnsafeMutablePointer<Float> { valueStorage[layer] }

    public func commit(_ newPositions: Int) {
        precondition(count + newPositions <= allocated, "commit beyond reserved positions")
        count += newPositions
    }

    public func truncate(to newCount: Int) {
        precondition(newCount >= 0, "negative cache length")
        count = min(count, newCount)
    }

    public func reset() { count = 0 }
}
