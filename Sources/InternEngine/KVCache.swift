// The simple KV cache: keys and values per layer in one `KVCacheType` (f16 by default, as llama.cpp's),
// grown by doubling up to a fixed capacity so a short chat does not pay for the model's whole context (a
// 1.8B model's 32k context is 3.2 GB in f16, 6.4 GB in f32). Other variants (rotating, paged) get their own
// types against InternCore's `KVCache` protocol.
public import InternCore
public import InternKernels
public import InternModels

/// A KV cache for one sequence.
public final class SimpleKVCache: KVCache {
    public let layers: Int
    /// Elements per position: kvHeads × headDim.
    public let rowSize: Int
    public let capacity: Int
    public let type: KVCacheType
    public private(set) var count = 0
    /// Positions allocated now (≤ capacity).
    public private(set) var allocated = 0
    /// Per layer: keys, values (allocated × rowSize elements), then for q8_0 their scales.
    private var storage: [LayerStorage]

    private struct LayerStorage {
        var keys, values: UnsafeMutableRawPointer
        var keyScales, valueScales: UnsafeMutablePointer<Float>?
    }

    public init(layers: Int, rowSize: Int, capacity: Int, type: KVCacheType = .f16) {
        precondition(type != .q8_0 || rowSize % KVCacheType.blockSize == 0, "q8_0 KV rows must be whole blocks of 32")
        self.layers = layers
        self.rowSize = rowSize
        self.capacity = capacity
        self.type = type
        storage = []
        storage = (0..<layers).map { _ in allocateLayer(positions: 0) }
    }

    /// A cache shaped for `model`, holding at most `capacity` positions (the model's maximum by default).
    public convenience init(model: any LanguageModel, capacity: Int? = nil, type: KVCacheType = .f16) {
        self.init(
            layers: model.kvCacheLayers, rowSize: model.kvCacheRowSize,
            capacity: min(capacity ?? model.maxSequenceLength, model.maxSequenceLength), type: type)
    }

    deinit {
        for layer in storage { free(layer) }
    }

    public func reserve(_ positions: Int) throws {
        guard positions <= capacity else { throw EngineError.contextFull(needed: positions, capacity: capacity) }
        guard positions > allocated else { return }
        let newSize = min(capacity, max(positions, allocated * 2, 256))
        for l in 0..<layers {
            let new = allocateLayer(positions: newSize), old = storage[l]
            let elements = count * rowSize, bytes = elements * type.elementBytes
            new.keys.copyMemory(from: old.keys, byteCount: bytes)
            new.values.copyMemory(from: old.values, byteCount: bytes)
            if let scales = old.keyScales { new.keyScales!.update(from: scales, count: elements / KVCacheType.blockSize) }
            if let scales = old.valueScales { new.valueScales!.update(from: scales, count: elements / KVCacheType.blockSize) }
            free(old)
            storage[l] = new
        }
        allocated = newSize
    }

    public func layer(_ index: Int) -> KVLayer {
        let s = storage[index]
        return KVLayer(type: type, rowSize: rowSize, keys: s.keys, values: s.values, keyScales: s.keyScales, valueScales: s.valueScales)
    }

    public func commit(_ newPositions: Int) {
        precondition(count + newPositions <= allocated, "commit beyond reserved positions")
        count += newPositions
    }

    public func truncate(to newCount: Int) {
        precondition(newCount >= 0, "negative cache length")
        count = min(count, newCount)
    }

    public func reset() { count = 0 }

    private func allocateLayer(positions: Int) -> LayerStorage {
        let elements = max(positions * rowSize, 1)
        func scales() -> UnsafeMutablePointer<Float>? {
            type == .q8_0 ? .allocate(capacity: max(elements / KVCacheType.blockSize, 1)) : nil
        }
        return LayerStorage(
            keys: .allocate(byteCount: elements * type.elementBytes, alignment: 64),
            values: .allocate(byteCount: elements * type.elementBytes, alignment: 64),
            keyScales: scales(), valueScales: scales())
    }

    private func free(_ layer: LayerStorage) {
        layer.keys.deallocate()
        layer.values.deallocate()
        layer.keyScales?.deallocate()
        layer.valueScales?.deallocate()
    }
}
