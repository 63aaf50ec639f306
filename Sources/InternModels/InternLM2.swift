// InternLM2 (internlm2 / internlm2-chat 1.8b, 7b, 20b): configuration, attention, MLP, block, model and the
// checkpoint's tensor names, after HF `modeling_internlm2.py` (internlm/internlm2-chat-7b, revision
// 4275caa205dbb8ff83930e2c1ce6bc62ec49329c) and mlx-lm `models/internlm2.py`. Holds no kernels, cache
// policy or sampling: it calls InternKernels and a KVCache. Tests compare its logits with
// transformers' LlamaForCausalLM on the same weights (scripts/fixtures/make_model_fixtures.py).
public import Foundation
public import InternCore
public import InternKernels

// MARK: - Configuration

/// config.json of an InternLM2 checkpoint. Keys keep the checkpoint's words; absent optional keys take
/// HF `InternLM2Config`'s defaults, and every value is validated with an error naming its key.
public struct InternLM2Configuration: Codable, Sendable, Equatable {
    /// `rope_scaling`: `{"type": "dynamic" | "linear", "factor": F}` (also spelled `rope_type`).
    public struct RopeScaling: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable { case dynamic, linear }
        public var type: Kind
        public var factor: Double
        public init(type: Kind, factor: Double) {
            self.type = type
            self.factor = factor
        }
        enum CodingKeys: String, CodingKey { case type, ropeType = "rope_type", factor }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let name = try c.decodeIfPresent(String.self, forKey: .type) ?? c.decodeIfPresent(String.self, forKey: .ropeType)
            guard let name else { throw ConfigError.missingKey(file: "config.json", key: "rope_scaling.type") }
            guard let kind = Kind(rawValue: name) else {
                throw ConfigError.invalidValue(
                    file: "config.json", key: "rope_scaling.type", value: "\"\(name)\"",
                    reason: "supported: \"dynamic\", \"linear\"")
            }
            guard let factor = try c.decodeIfPresent(Double.self, forKey: .factor) else {
                throw ConfigError.missingKey(file: "config.json", key: "rope_scaling.factor")
            }
            type = kind
            self.factor = factor
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(type, forKey: .type)
            try c.encode(factor, forKey: .factor)
        }
    }

    public var modelType: String = "internlm2"
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int = 2048
    public var rmsNormEps: Double = 1e-6
    public var ropeTheta: Double = 10000
    public var ropeScaling: RopeScaling? = nil
    public var bias: Bool = false
    public var tieWordEmbeddings: Bool = false
    public var hiddenAct: String = "silu"
    /// `quantization`: `{"type": "q8_0" | "q4_0", "block_size": 32}` in checkpoints written by `intern
    /// quantize`: the two-dimensional weights are U8 tensors of ggml blocks (InternKit's own key).
    public var quantization: Quantization? = nil

    public struct Quantization: Codable, Sendable, Equatable {
        public var type: BlockQuantization
        public var blockSize: Int
        public init(type: BlockQuantization) {
            self.type = type
            blockSize = type.blockSize
        }
        enum CodingKeys: String, CodingKey { case type, blockSize = "block_size" }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let name = try c.decode(String.self, forKey: .type)
            guard let type = BlockQuantization(rawValue: name), type == .q8_0 || type == .q4_0 else {
                throw ConfigError.invalidValue(
                    file: "config.json", key: "quantization.type", value: "\"\(name)\"", reason: "supported: \"q8_0\", \"q4_0\"")
            }
            self.type = type
            blockSize = try c.decodeIfPresent(Int.self, forKey: .blockSize) ?? type.blockSize
            guard blockSize == type.blockSize else {
                throw ConfigError.invalidValue(
                    file: "config.json", key: "quantization.block_size", value: "\(blockSize)", reason: "\(name) blocks hold \(type.blockSize)")
            }
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(type.rawValue, forKey: .type)
            try c.encode(blockSize, forKey: .blockSize)
        }
    }

    /// Which elements RoPE rotates together. HF checkpoints use halves; GGUF files store Q and K rows
    /// permuted for llama.cpp's adjacent pairs. Not a config.json key.
    public var ropePairing: RopePairing = .halves

    public enum RopePairing: String, Sendable, Codable { case halves, adjacentPairs }

    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Query heads per KV head.
    public var kvGroupSize: Int { numAttentionHeads / numKeyValueHeads }

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
        case intermediateSize = "intermediate_size", vocabSize = "vocab_size"
        case maxPositionEmbeddings = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", ropeScaling = "rope_scaling", bias
        case tieWordEmbeddings = "tie_word_embeddings", hiddenAct = "hidden_act"
        case quantization
    }

    public init(
        hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int,
        intermediateSize: Int, vocabSize: Int = 92544, maxPositionEmbeddings: Int = 32768,
        rmsNormEps: Double = 1e-5, ropeTheta: Double = 1_000_000, ropeScaling: RopeScaling? = nil
    ) {
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.intermediateSize = intermediateSize
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func required(_ key: CodingKeys) throws -> Int {
            guard let value = try c.decodeIfPresent(Int.self, forKey: key) else {
                throw ConfigError.missingKey(file: "config.json", key: key.rawValue)
            }
            return value
        }
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "internlm2"
        hiddenSize = try required(.hiddenSize)
        numHiddenLayers = try required(.numHiddenLayers)
        numAttentionHeads = try required(.numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        intermediateSize = try required(.intermediateSize)
        vocabSize = try required(.vocabSize)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? 10000
        ropeScaling = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeScaling)
        bias = try c.decodeIfPresent(Bool.self, forKey: .bias) ?? false
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        quantization = try c.decodeIfPresent(Quantization.self, forKey: .quantization)
        try validate()
    }

    /// Throws `ConfigError.invalidValue` naming the first key out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ key: CodingKeys, _ value: Any, _ reason: String) throws {
            if !ok { throw ConfigError.invalidValue(file: "config.json", key: key.rawValue, value: "\(value)", reason: reason) }
        }
        for (key, value) in [
            (CodingKeys.hiddenSize, hiddenSize), (.numHiddenLayers, numHiddenLayers),
            (.numAttentionHeads, numAttentionHeads), (.numKeyValueHeads, numKeyValueHeads),
            (.intermediateSize, intermediateSize), (.vocabSize, vocabSize),
            (.maxPositionEmbeddings, maxPositionEmbeddings),
        ] {
            try check(value > 0, key, value, "must be positive")
        }
        try check(
            hiddenSize % numAttentionHeads == 0, .hiddenSize, hiddenSize,
            "must be a multiple of num_attention_heads (\(numAttentionHeads))")
        try check(
            headDim % 2 == 0, .numAttentionHeads, numAttentionHeads,
            "gives an odd head dim (\(headDim)); rotary embedding needs an even one")
        try check(
            numAttentionHeads % numKeyValueHeads == 0, .numKeyValueHeads, numKeyValueHeads,
            "must divide num_attention_heads (\(numAttentionHeads))")
        try check(rmsNormEps > 0 && rmsNormEps.isFinite, .rmsNormEps, rmsNormEps, "must be positive")
        try check(ropeTheta > 0 && ropeTheta.isFinite, .ropeTheta, ropeTheta, "must be positive")
        try check(!bias, .bias, bias, "biases are not supported (InternLM2 checkpoints have none)")
        try check(hiddenAct == "silu", .hiddenAct, "\"\(hiddenAct)\"", "only \"silu\" is supported")
        if let scaling = ropeScaling, !(scaling.factor >= 1 && scaling.factor.isFinite) {
            throw ConfigError.invalidValue(
                file: "config.json", key: "rope_scaling.factor", value: "\(scaling.factor)",
                reason: "must be ≥ 1")
        }
    }

    /// Reads and validates `config.json` at `url`.
    public static func load(from url: URL) throws -> InternLM2Configuration {
        guard let data = try? Data(contentsOf: url) else { throw ConfigError.fileNotFound(path: url.path) }
        do {
            return try JSONDecoder().decode(InternLM2Configuration.self, from: data)
        } catch let error as ConfigError {
            throw error
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ConfigError.invalidValue(file: "config.json", key: key, value: "?", reason: context.debugDescription)
        } catch {
            throw ConfigError.invalidJSON(file: "config.json", reason: "\(error)")
        }
    }

    /// The published shapes (internlm2-chat-1_8b, -7b, -20b config.json).
    public static let internLM2_1_8B = InternLM2Configuration(
        hiddenSize: 2048, numHiddenLayers: 24, numAttentionHeads: 16, numKeyValueHeads: 8, intermediateSize: 8192,
        ropeScaling: RopeScaling(type: .dynamic, factor: 2.0))
    public static let internLM2_7B = InternLM2Configuration(
        hiddenSize: 4096, numHiddenLayers: 32, numAttentionHeads: 32, numKeyValueHeads: 8, intermediateSize: 14336,
        ropeScaling: RopeScaling(type: .dynamic, factor: 2.0))
    public static let internLM2_20B = InternLM2Configuration(
        hiddenSize: 6144, numHiddenLayers: 48, numAttentionHeads: 48, numKeyValueHeads: 8, intermediateSize: 16384,
        ropeScaling: RopeScaling(type: .dynamic, factor: 3.0))
}

// MARK: - Attention

/// The attention block's weights and the one place that knows the fused `wqkv` layout.
struct InternLM2Attention {
    /// HF checkpoints fuse the projections; GGUF files (llama.cpp's converter splits `wqkv`) keep three.
    enum Projection {
        case fused(wqkv: WeightMatrix)  // ((heads + 2 kvHeads) * headDim, hidden)
        case separate(q: WeightMatrix, k: WeightMatrix, v: WeightMatrix)  // (heads·headDim | kvHeads·headDim, hidden)
    }
    let projection: Projection
    let wo: WeightMatrix  // (hidden, heads * headDim)

    /// `wqkv` (and so each token's qkv activation) is interleaved per KV group: for each KV head g in
    /// 0..<kvHeads, the group's `heads / kvHeads` query heads (q heads g·n ..< (g+1)·n), then key head g,
    /// then value head g, each `headDim` wide. HF reshapes it as `(kvHeads, n + 2, headDim)` and takes
    /// `[:, :n]`, `[:, -2]`, `[:, -1]`. This splits one token's qkv into q (heads, headDim), k and v
    /// (kvHeads, headDim).
    static func splitQKV(
        _ qkv: UnsafePointer<Float>,  // ((heads + 2 kvHeads) * headDim)
        q: UnsafeMutablePointer<Float>,  // (heads, headDim)
        k: UnsafeMutablePointer<Float>,  // (kvHeads, headDim)
        v: UnsafeMutablePointer<Float>,  // (kvHeads, headDim)
        heads: Int, kvHeads: Int, headDim: Int
    ) {
        let n = heads / kvHeads
        for g in 0..<kvHeads {
            let group = qkv + g * (n + 2) * headDim
            (q + g * n * headDim).update(from: group, count: n * headDim)
            (k + g * headDim).update(from: group + n * headDim, count: headDim)
            (v + g * headDim).update(from: group + (n + 1) * headDim, count: headDim)
        }
    }
}

// MARK: - MLP

/// SwiGLU feed-forward: w2(silu(w1 x) * w3 x).
struct InternLM2MLP {
    let w1: WeightMatrix  // (intermediate, hidden), gate
    let w3: WeightMatrix  // (intermediate, hidden), up
    let w2: WeightMatrix  // (hidden, intermediate), down
}

// MARK: - Block

struct InternLM2Block {
    let attentionNorm: [Float]  // (hidden)
    let attention: InternLM2Attention
    let ffnNorm: [Float]  // (hidden)
    let feedForward: InternLM2MLP

    /// The block with its matrices `preparedForProducts`.
    func preparedForProducts(pool: ThreadPool) -> InternLM2Block {
        let pack = { (m: WeightMatrix) in m.preparedForProducts(pool: pool) }
        let projection: InternLM2Attention.Projection =
            switch attention.projection {
            case .fused(let wqkv): .fused(wqkv: pack(wqkv))
            case .separate(let q, let k, let v): .separate(q: pack(q), k: pack(k), v: pack(v))
            }
        return InternLM2Block(
            attentionNorm: attentionNorm, attention: InternLM2Attention(projection: projection, wo: pack(attention.wo)),
            ffnNorm: ffnNorm,
            feedForward: InternLM2MLP(w1: pack(feedForward.w1), w3: pack(feedForward.w3), w2: pack(feedForward.w2)))
    }
}

// MARK: - Model

/// An InternLM2 checkpoint ready to run: mapped weights, a thread pool and run-state buffers sized once.
/// Runs one forward pass at a time: concurrent callers wait on a lock, since the run-state buffers are shared.
public final class InternLM2Model: LanguageModel, @unchecked Sendable {
    public let configuration: InternLM2Configuration
    /// Tokens per internal prefill chunk; run-state buffers are sized for it.
    public let chunkSize: Int
    /// The default chunk: long enough that a prompt's weights stream from memory (and are repacked for the
    /// prefill GEMMs) a few times only, as llama.cpp's 512-token micro-batch; the GEMMs block tokens for the
    /// caches themselves. 512 against 256, pp512 on 2 Zen 4 threads: 1.8B Q8_0 +14–20%, small Q4_0 and
    /// SmolLM2 +5–15%, 1.8B bf16 equal within noise (BENCHMARKS.md); the run state doubles (1.8B: 60 MB).
    /// INTERNKIT_PREFILL_CHUNK overrides it (benchmarks).
    public static let defaultChunkSize: Int = {
        if let value = ProcessInfo.processInfo.environment["INTERNKIT_PREFILL_CHUNK"], let n = Int(value), n > 0 { return n }
        return 512
    }()
    /// Called with (name, layer or -1, activations of the chunk) after each named step, for diffing one
    /// layer against a reference (llama.cpp `cb(cur, "attn_norm", il)`). Nil in normal runs.
    public var debugHook: ((String, Int, UnsafeBufferPointer<Float>) -> Void)?

    let tokEmbeddings: WeightMatrix  // (vocab, hidden)
    let layers: [InternLM2Block]
    let norm: [Float]  // (hidden)
    let output: WeightMatrix  // (vocab, hidden)
    let pool: ThreadPool
    private let state: RunState
    private var inverseFrequencies: (base: Double, values: [Float]) = (0, [])
    private let forwardLock = NSLock()

    public var vocabularySize: Int { configuration.vocabSize }
    public var maxSequenceLength: Int {
        configuration.ropeScaling.map { Int(Double(configuration.maxPositionEmbeddings) * $0.factor) }
            ?? configuration.maxPositionEmbeddings
    }
    public var kvCacheLayers: Int { configuration.numHiddenLayers }
    public var kvCacheRowSize: Int { configuration.numKeyValueHeads * configuration.headDim }
    public var kvCacheHeadDim: Int { configuration.headDim }

    /// Loads `config.json` and the safetensors weights of `directory`.
    public convenience init(directory: URL, threadCount: Int? = nil, chunkSize: Int = InternLM2Model.defaultChunkSize) throws {
        let configuration = try InternLM2Configuration.load(from: directory.appendingPathComponent("config.json"))
        try self.init(
            configuration: configuration, checkpoint: Checkpoint(directory: directory),
            threadCount: threadCount, chunkSize: chunkSize)
    }

    public convenience init(
        configuration: InternLM2Configuration, checkpoint: Checkpoint, threadCount: Int? = nil,
        chunkSize: Int = InternLM2Model.defaultChunkSize
    ) throws {
        try configuration.validate()
        let names = InternLM2WeightNames(configuration: configuration)
        var used = Set<String>()
        func view(_ name: String) throws -> TensorView {
            used.insert(name)
            let view = try checkpoint.tensor(name)
            let expected = names.shapes[name]!
            guard view.shape == expected else {
                throw CheckpointError.shapeMismatch(file: view.file, tensor: name, expected: expected, actual: view.shape)
            }
            return view
        }
        func matrix(_ name: String) throws -> WeightMatrix {
            if let q = configuration.quantization?.type, case let expected = names.shapes[name]!, expected.count == 2 {
                used.insert(name)
                let view = try checkpoint.tensor(name)
                if view.dtype == .u8 {
                    return try WeightMatrix(view, quantization: q, rows: expected[0], cols: expected[1])
                }
            }
            return try WeightMatrix(try view(name))
        }
        func vector(_ name: String) throws -> [Float] { try WeightMatrix(try view(name)).floats() }
        let embeddings = try matrix(names.tokEmbeddings)
        let layers = try (0..<configuration.numHiddenLayers).map { l in
            InternLM2Block(
                attentionNorm: try vector(names.attentionNorm(l)),
                attention: InternLM2Attention(projection: .fused(wqkv: try matrix(names.wqkv(l))), wo: try matrix(names.wo(l))),
                ffnNorm: try vector(names.ffnNorm(l)),
                feedForward: InternLM2MLP(w1: try matrix(names.w1(l)), w3: try matrix(names.w3(l)), w2: try matrix(names.w2(l))))
        }
        let norm = try vector(names.norm)
        let output = configuration.tieWordEmbeddings ? embeddings : try matrix(names.output)
        // Extra tensors mean the checkpoint is not the model the config describes. HF's rotary buffers are
        // derived state, not weights, and are ignored.
        for name in checkpoint.tensorNames.subtracting(used).sorted() where !name.hasSuffix("rotary_emb.inv_freq") {
            throw CheckpointError.unexpectedTensor(file: try checkpoint.tensor(name).file, tensor: name)
        }
        self.init(
            configuration: configuration, tokEmbeddings: embeddings, layers: layers, norm: norm, output: output,
            threadCount: threadCount, chunkSize: chunkSize)
    }

    /// A model from weights already mapped and checked (the safetensors and GGUF loaders end here).
    init(
        configuration: InternLM2Configuration, tokEmbeddings: WeightMatrix, layers: [InternLM2Block], norm: [Float],
        output: WeightMatrix, threadCount: Int?, chunkSize: Int
    ) {
        let pool = ThreadPool(threadCount: threadCount)
        self.configuration = configuration
        self.tokEmbeddings = tokEmbeddings
        // Products read bf16 matrices from their lossless 12-bit copies, others from copies in huge pages
        // (WeightMatrix.preparedForProducts); the embedding table is only gathered from, so it stays as mapped.
        self.layers = layers.map { $0.preparedForProducts(pool: pool) }
        self.norm = norm
        self.output = output.preparedForProducts(pool: pool)
        self.chunkSize = max(1, chunkSize)
        self.pool = pool
        state = RunState(configuration: configuration, chunk: self.chunkSize)
    }

    public func forward(
        _ tokens: UnsafeBufferPointer<Int32>, cache: any KVCache, allLogits: Bool, logits: UnsafeMutablePointer<Float>
    ) throws {
        forwardLock.lock()
        defer { forwardLock.unlock() }
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        for id in tokens where id < 0 || Int(id) >= configuration.vocabSize {
            throw ModelError.tokenOutOfRange(id: id, vocabularySize: configuration.vocabSize)
        }
        let start = cache.count
        try cache.reserve(start + tokens.count)
        // Dynamic NTK picks its RoPE base from the sequence length this call reaches, for every token of the
        // call, as HF does when it runs the whole prompt in one forward.
        let frequencies = ropeInverseFrequencies(sequenceLength: start + tokens.count)
        state.ensureScoreCapacity(start + tokens.count, threads: pool.threadCount)
        var done = 0
        while done < tokens.count {
            let count = min(chunkSize, tokens.count - done)
            let isLast = done + count == tokens.count
            let out: UnsafeMutablePointer<Float>? = allLogits ? logits + done * configuration.vocabSize : (isLast ? logits : nil)
            forwardChunk(
                UnsafeBufferPointer(rebasing: tokens[done..<(done + count)]), start: start + done, cache: cache,
                frequencies: frequencies, allLogits: allLogits, logits: out)
            done += count
        }
        cache.commit(tokens.count)
    }

    /// Batched decode (continuous batching): one new token per sequence, each with its own cache and
    /// position. Linear layers run as one matMul over the batch rows; RoPE uses each row's position (and,
    /// with dynamic NTK, the base its own length gives); attention runs per sequence over its own cache.
    /// Every kernel reduces each row in an order independent of the row count (MatMul.swift's header), so
    /// row b's logits are bitwise those of `forward([tokens[b]], cache: caches[b])`.
    public func forwardBatch(
        _ tokens: UnsafeBufferPointer<Int32>, caches: [any KVCache], logits: UnsafeMutablePointer<Float>
    ) throws {
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        precondition(tokens.count == caches.count, "one cache per token")
        precondition(Set(caches.map { ObjectIdentifier($0) }).count == caches.count, "a cache appears twice in one batch")
        for id in tokens where id < 0 || Int(id) >= configuration.vocabSize {
            throw ModelError.tokenOutOfRange(id: id, vocabularySize: configuration.vocabSize)
        }
        for cache in caches { try cache.reserve(cache.count + 1) }
        state.ensureScoreCapacity(caches.map { $0.count + 1 }.max()!, threads: pool.threadCount)
        var done = 0
        while done < tokens.count {
            let count = min(chunkSize, tokens.count - done)
            forwardRows(
                UnsafeBufferPointer(rebasing: tokens[done..<(done + count)]), caches: Array(caches[done..<(done + count)]),
                logits: logits + done * configuration.vocabSize)
            done += count
        }
        for cache in caches { cache.commit(1) }
    }

    /// Up to `chunkSize` rows of a batched decode step (see `forwardBatch`).
    private func forwardRows(_ tokens: UnsafeBufferPointer<Int32>, caches: [any KVCache], logits: UnsafeMutablePointer<Float>) {
        let c = configuration, s = state
        let B = tokens.count, hidden = c.hiddenSize, heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        let headDim = c.headDim, half = headDim / 2, inter = c.intermediateSize, kvDim = kvHeads * headDim
        let eps = Float(c.rmsNormEps)
        let x = s.x, xb = s.xb, q = s.q, k = s.k, v = s.v, attn = s.attn, gate = s.gate, up = s.up
        let positionScale: Float = c.ropeScaling?.type == .linear ? Float(1 / c.ropeScaling!.factor) : 1
        for (b, id) in tokens.enumerated() {
            tokEmbeddings.readRow(Int(id), into: x + b * hidden)
            let position = caches[b].count
            ropeInverseFrequencies(sequenceLength: position + 1).withUnsafeBufferPointer { inv in
                ropeCosSin(
                    position: Float(position) * positionScale, inverseFrequencies: inv.baseAddress!,
                    cos: s.cos + b * half, sin: s.sin + b * half, halfDim: half)
            }
        }
        let rotate = c.ropePairing == .halves ? applyRotaryEmbedding : applyRotaryEmbeddingAdjacentPairs
        for (l, layer) in layers.enumerated() {
            for b in 0..<B { rmsNorm(xb + b * hidden, input: x + b * hidden, weight: layer.attentionNorm, count: hidden, eps: eps) }
            // Q, K and V for every row; K and V then go into each sequence's own cache.
            projectQKV(layer.attention.projection, xb, B, prefill: false)
            for b in 0..<B {
                let cache = caches[b].layer(l), position = caches[b].count
                let qb = q + b * heads * headDim, kb = k + b * kvDim
                rotate(qb, heads, headDim, s.cos + b * half, s.sin + b * half)
                rotate(kb, kvHeads, headDim, s.cos + b * half, s.sin + b * half)
                cache.store(position: position, keys: kb, values: v + b * kvDim, rows: 1)
                attention(
                    attn + b * heads * headDim, query: qb, cache: cache, tokens: 1, startPosition: position,
                    heads: heads, kvHeads: kvHeads, headDim: headDim, scratch: s.scores, pool: pool)
            }
            matmul(xb, layer.attention.wo, attn, B, prefill: false)
            addInPlace(x, xb, count: B * hidden)
            for b in 0..<B { rmsNorm(xb + b * hidden, input: x + b * hidden, weight: layer.ffnNorm, count: hidden, eps: eps) }
            matmul(gate, layer.feedForward.w1, xb, B, prefill: false)
            matmul(up, layer.feedForward.w3, xb, B, prefill: false)
            siluMul(gate, up: up, count: B * inter)
            matmul(xb, layer.feedForward.w2, gate, B, prefill: false)
            addInPlace(x, xb, count: B * hidden)
        }
        for b in 0..<B { rmsNorm(xb + b * hidden, input: x + b * hidden, weight: norm, count: hidden, eps: eps) }
        matmul(logits, output, xb, B, prefill: false)
    }

    /// One chunk of at most `chunkSize` tokens at positions `start...`; logits as `forward` describes.
    private func forwardChunk(
        _ tokens: UnsafeBufferPointer<Int32>, start: Int, cache: any KVCache, frequencies: [Float],
        allLogits: Bool, logits: UnsafeMutablePointer<Float>?
    ) {
        let c = configuration, s = state
        let T = tokens.count, hidden = c.hiddenSize, heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        let headDim = c.headDim, half = headDim / 2, inter = c.intermediateSize, kvDim = kvHeads * headDim
        let eps = Float(c.rmsNormEps)
        let x = s.x, xb = s.xb, q = s.q, k = s.k, v = s.v, attn = s.attn, gate = s.gate, up = s.up
        // A one-token chunk (decode through `forward`) runs the decode kernels, as `forwardBatch` does.
        let prefill = T > 1
        func debug(_ name: String, _ layer: Int, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
            debugHook?(name, layer, UnsafeBufferPointer(start: p, count: n))
        }

        for (t, id) in tokens.enumerated() { tokEmbeddings.readRow(Int(id), into: x + t * hidden) }
        // Linear scaling divides positions by the factor (HF `InternLM2LinearScalingRotaryEmbedding`).
        let positionScale: Float = c.ropeScaling?.type == .linear ? Float(1 / c.ropeScaling!.factor) : 1
        frequencies.withUnsafeBufferPointer { inv in
            for t in 0..<T {
                ropeCosSin(
                    position: Float(start + t) * positionScale, inverseFrequencies: inv.baseAddress!,
                    cos: s.cos + t * half, sin: s.sin + t * half, halfDim: half)
            }
        }

        for (l, layer) in layers.enumerated() {
            let layerCache = cache.layer(l)
            // Attention: norm → wqkv → split → RoPE → cache → attention → wo → residual.
            for t in 0..<T { rmsNorm(xb + t * hidden, input: x + t * hidden, weight: layer.attentionNorm, count: hidden, eps: eps) }
            debug("attn_norm", l, xb, T * hidden)
            projectQKV(layer.attention.projection, xb, T, prefill: prefill)
            let rotate = c.ropePairing == .halves ? applyRotaryEmbedding : applyRotaryEmbeddingAdjacentPairs
            for t in 0..<T {
                rotate(q + t * heads * headDim, heads, headDim, s.cos + t * half, s.sin + t * half)
                rotate(k + t * kvDim, kvHeads, headDim, s.cos + t * half, s.sin + t * half)
            }
            // Rotated keys and the values go into the cache in its storage type; attention reads them there.
            layerCache.store(position: start, keys: k, values: v, rows: T)
            attention(
                attn, query: q, cache: layerCache, tokens: T, startPosition: start, heads: heads,
                kvHeads: kvHeads, headDim: headDim, scratch: s.scores, pool: pool)
            debug("attn_out", l, attn, T * heads * headDim)
            matmul(xb, layer.attention.wo, attn, T, prefill: prefill)
            addInPlace(x, xb, count: T * hidden)
            // Feed-forward: norm → w1, w3 → SiLU(gate) * up → w2 → residual.
            for t in 0..<T { rmsNorm(xb + t * hidden, input: x + t * hidden, weight: layer.ffnNorm, count: hidden, eps: eps) }
            debug("ffn_norm", l, xb, T * hidden)
            matmul(gate, layer.feedForward.w1, xb, T, prefill: prefill)
            matmul(up, layer.feedForward.w3, xb, T, prefill: prefill)
            siluMul(gate, up: up, count: T * inter)
            matmul(xb, layer.feedForward.w2, gate, T, prefill: prefill)
            addInPlace(x, xb, count: T * hidden)
            debug("layer_out", l, x, T * hidden)
        }

        guard let logits else { return }
        let first = allLogits ? 0 : T - 1
        for t in first..<T { rmsNorm(xb + t * hidden, input: x + t * hidden, weight: norm, count: hidden, eps: eps) }
        debug("norm", -1, xb + first * hidden, (T - first) * hidden)
        // Only the last position's logits: a one-row product, computed as a decode step computes it.
        matmul(logits, output, xb + first * hidden, T - first, prefill: prefill && T - first > 1)
    }

    /// Q, K and V of `rows` normed rows into the run state's q, k, v: one fused matrix split per KV group,
    /// or three matrices.
    private func projectQKV(_ projection: InternLM2Attention.Projection, _ input: UnsafePointer<Float>, _ rows: Int, prefill: Bool) {
        let c = configuration, s = state
        let heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads, headDim = c.headDim, kvDim = kvHeads * headDim
        switch projection {
        case .fused(let wqkv):
            let qkvDim = (heads + 2 * kvHeads) * headDim
            matmul(s.qkv, wqkv, input, rows, prefill: prefill)
            for r in 0..<rows {
                InternLM2Attention.splitQKV(
                    s.qkv + r * qkvDim, q: s.q + r * heads * headDim, k: s.k + r * kvDim, v: s.v + r * kvDim,
                    heads: heads, kvHeads: kvHeads, headDim: headDim)
            }
        case .separate(let wq, let wk, let wv):
            matmul(s.q, wq, input, rows, prefill: prefill)
            matmul(s.k, wk, input, rows, prefill: prefill)
            matmul(s.v, wv, input, rows, prefill: prefill)
        }
    }

    /// `prefill`: part of a multi-token prompt chunk (WeightMatrix.multiply picks its kernels by phase, never
    /// by batch size, so decode rows stay bitwise equal alone or batched).
    private func matmul(
        _ out: UnsafeMutablePointer<Float>, _ w: WeightMatrix, _ input: UnsafePointer<Float>, _ tokens: Int, prefill: Bool
    ) {
        w.multiply(out, input, tokens: tokens, prefill: prefill, pool: pool)
    }

    /// RoPE inverse frequencies for a sequence reaching `sequenceLength` positions. With dynamic NTK
    /// scaling and a sequence beyond max_position_embeddings, the base grows as HF
    /// `InternLM2DynamicNTKScalingRotaryEmbedding` computes it:
    /// base · ((factor · len / maxPos) − (factor − 1)) ^ (dim / (dim − 2)).
    func ropeInverseFrequencies(sequenceLength: Int) -> [Float] {
        let c = configuration
        var base = c.ropeTheta
        if let scaling = c.ropeScaling, scaling.type == .dynamic, sequenceLength > c.maxPositionEmbeddings {
            let dim = Double(c.headDim)
            base *= pow(
                scaling.factor * Double(sequenceLength) / Double(c.maxPositionEmbeddings) - (scaling.factor - 1),
                dim / (dim - 2))
        }
        if inverseFrequencies.base != base {
            inverseFrequencies = (base, InternKernels.ropeInverseFrequencies(base: base, headDim: c.headDim))
        }
        return inverseFrequencies.values
    }
}

/// Activation buffers for one chunk, allocated once at load (llama2.c `RunState`).
private final class RunState {
    let x, xb, qkv, q, k, v, attn, gate, up, cos, sin: UnsafeMutablePointer<Float>
    private(set) var scores: UnsafeMutablePointer<Float>  // (threads × attentionScratchRows, score capacity)
    private var scoreCapacity = 0

    init(configuration c: InternLM2Configuration, chunk: Int) {
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            p.initialize(repeating: 0, count: max(n, 1))
            return p
        }
        let hd = c.headDim
        x = buffer(chunk * c.hiddenSize)
        xb = buffer(chunk * c.hiddenSize)
        qkv = buffer(chunk * (c.numAttentionHeads + 2 * c.numKeyValueHeads) * hd)
        q = buffer(chunk * c.numAttentionHeads * hd)
        k = buffer(chunk * c.numKeyValueHeads * hd)
        v = buffer(chunk * c.numKeyValueHeads * hd)
        attn = buffer(chunk * c.numAttentionHeads * hd)
        gate = buffer(chunk * c.intermediateSize)
        up = buffer(chunk * c.intermediateSize)
        cos = buffer(chunk * hd / 2)
        sin = buffer(chunk * hd / 2)
        scores = buffer(1)
    }

    /// Grows the attention score scratch to `positions` per row of each thread (doubling, so it rarely
    /// reallocates).
    func ensureScoreCapacity(_ positions: Int, threads: Int) {
        guard positions > scoreCapacity else { return }
        let capacity = max(positions, scoreCapacity * 2, 256)
        scores.deallocate()
        scores = .allocate(capacity: capacity * threads * attentionScratchRows)
        scoreCapacity = capacity
    }

    deinit {
        for p in [x, xb, qkv, q, k, v, attn, gate, up, cos, sin, scores] { p.deallocate() }
    }
}

// MARK: - Weight names

/// The checkpoint's tensor names and shapes, written once.
public struct InternLM2WeightNames: Sendable {
    public let configuration: InternLM2Configuration
    public let tokEmbeddings = "model.tok_embeddings.weight"
    public let norm = "model.norm.weight"
    public let output = "output.weight"
    public func wqkv(_ l: Int) -> String { "model.layers.\(l).attention.wqkv.weight" }
    public func wo(_ l: Int) -> String { "model.layers.\(l).attention.wo.weight" }
    public func w1(_ l: Int) -> String { "model.layers.\(l).feed_forward.w1.weight" }
    public func w3(_ l: Int) -> String { "model.layers.\(l).feed_forward.w3.weight" }
    public func w2(_ l: Int) -> String { "model.layers.\(l).feed_forward.w2.weight" }
    public func attentionNorm(_ l: Int) -> String { "model.layers.\(l).attention_norm.weight" }
    public func ffnNorm(_ l: Int) -> String { "model.layers.\(l).ffn_norm.weight" }

    public init(configuration: InternLM2Configuration) { self.configuration = configuration }

    /// Every tensor of the checkpoint with its shape, in the order HF saves them.
    public var specs: [(name: String, shape: [Int])] {
        let c = configuration, h = c.hiddenSize, hd = c.headDim
        var out: [(String, [Int])] = [(tokEmbeddings, [c.vocabSize, h])]
        for l in 0..<c.numHiddenLayers {
            out += [
                (wqkv(l), [(c.numAttentionHeads + 2 * c.numKeyValueHeads) * hd, h]),
                (wo(l), [h, c.numAttentionHeads * hd]),
                (w1(l), [c.intermediateSize, h]),
                (w3(l), [c.intermediateSize, h]),
                (w2(l), [h, c.intermediateSize]),
                (attentionNorm(l), [h]),
                (ffnNorm(l), [h]),
            ]
        }
        out.append((norm, [h]))
        if !c.tieWordEmbeddings { out.append((output, [c.vocabSize, h])) }
        return out
    }

    public var shapes: [String: [Int]] { Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0.shape) }) }
}
