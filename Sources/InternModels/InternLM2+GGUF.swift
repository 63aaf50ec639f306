// GGUF files of architectures `internlm2` and `llama` mapped onto the one InternLM2 implementation:
// hyper-parameters from `{arch}.*` metadata and tensors by llama.cpp's names (llama-arch.cpp
// LLM_TENSOR_NAMES), read in place, quantized or not. llama.cpp's converter splits InternLM2's fused
// `wqkv` into attn_q/k/v and permutes the rows of Q and K for its RoPE (convert_hf_to_gguf.py
// `LlamaModel.permute`), so these models rotate adjacent pairs (`RopePairing.adjacentPairs`).

public import InternCore

extension InternLM2Configuration {
    /// The configuration a GGUF file describes.
    /// - Throws: `CheckpointError.malformedGGUF` naming the metadata key that is missing or unsupported.
    public init(gguf file: GGUFFile) throws {
        let arch = try file.requireString("general.architecture")
        guard arch == "llama" || arch == "internlm2" else {
            throw CheckpointError.malformedGGUF(
                file: file.fileName, offset: 0, reason: "general.architecture '\(arch)' is not supported (supported: internlm2, llama)")
        }
        func int(_ key: String) throws -> Int { try file.requireInt("\(arch).\(key)") }
        func double(_ key: String, default value: Double) throws -> Double {
            guard let v = file["\(arch).\(key)"] else { return value }
            guard let d = v.doubleValue else {
                throw CheckpointError.malformedGGUF(file: file.fileName, offset: 0, reason: "metadata key '\(arch).\(key)' is not a number")
            }
            return d
        }
        guard let embeddings = file.tensorInfo("token_embd.weight"), embeddings.dimensions.count == 2 else {
            throw CheckpointError.missingTensor(file: file.fileName, tensor: "token_embd.weight")
        }
        let heads = try int("attention.head_count")
        var scaling: RopeScaling? = nil
        if let type = file["\(arch).rope.scaling.type"]?.stringValue, type != "none" {
            guard type == "linear" else {
                throw CheckpointError.malformedGGUF(
                    file: file.fileName, offset: 0, reason: "\(arch).rope.scaling.type '\(type)' is not supported (supported: none, linear)")
            }
            scaling = RopeScaling(type: .linear, factor: try double("rope.scaling.factor", default: 1))
        }
        self.init(
            hiddenSize: try int("embedding_length"), numHiddenLayers: try int("block_count"), numAttentionHeads: heads,
            numKeyValueHeads: file["\(arch).attention.head_count_kv"]?.intValue ?? heads,
            intermediateSize: try int("feed_forward_length"), vocabSize: embeddings.dimensions[1],
            maxPositionEmbeddings: try int("context_length"), rmsNormEps: try double("attention.layer_norm_rms_epsilon", default: 1e-5),
            ropeTheta: try double("rope.freq_base", default: 10000), ropeScaling: scaling)
        modelType = arch
        tieWordEmbeddings = file.tensorInfo("output.weight") == nil
        ropePairing = .adjacentPairs
        if let ropeDimensions = file["\(arch).rope.dimension_count"]?.intValue, ropeDimensions != headDim {
            throw CheckpointError.malformedGGUF(
                file: file.fileName, offset: 0,
                reason: "\(arch).rope.dimension_count \(ropeDimensions) differs from the head size \(headDim) (partial RoPE is not supported)")
        }
        do { try validate() } catch { throw CheckpointError.malformedGGUF(file: file.fileName, offset: 0, reason: "\(error)") }
    }
}

extension InternLM2Model {
    /// Loads a GGUF file of architecture `internlm2` or `llama`; weights stay in the file's formats.
    public convenience init(gguf file: GGUFFile, threadCount: Int? = nil, chunkSize: Int = InternLM2Model.defaultChunkSize) throws {
        let c = try InternLM2Configuration(gguf: file)
        let h = c.hiddenSize, hd = c.headDim
        var used = Set<String>()
        func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> WeightMatrix {
            used.insert(name)
            let m = try file.matrix(name)
            guard m.rows == rows && m.cols == cols else {
                throw CheckpointError.shapeMismatch(file: file.fileName, tensor: name, expected: [rows, cols], actual: [m.rows, m.cols])
            }
            return m
        }
        func vector(_ name: String) throws -> [Float] { try matrix(name, 1, h).floats() }
        let embeddings = try matrix("token_embd.weight", c.vocabSize, h)
        let layers = try (0..<c.numHiddenLayers).map { l in
            let p = "blk.\(l)."
            return InternLM2Block(
                attentionNorm: try vector(p + "attn_norm.weight"),
                attention: InternLM2Attention(
                    projection: .separate(
                        q: try matrix(p + "attn_q.weight", c.numAttentionHeads * hd, h),
                        k: try matrix(p + "attn_k.weight", c.numKeyValueHeads * hd, h),
                        v: try matrix(p + "attn_v.weight", c.numKeyValueHeads * hd, h)),
                    wo: try matrix(p + "attn_output.weight", h, c.numAttentionHeads * hd)),
                ffnNorm: try vector(p + "ffn_norm.weight"),
                feedForward: InternLM2MLP(
                    w1: try matrix(p + "ffn_gate.weight", c.intermediateSize, h),
                    w3: try matrix(p + "ffn_up.weight", c.intermediateSize, h),
                    w2: try matrix(p + "ffn_down.weight", h, c.intermediateSize)))
        }
        let norm = try vector("output_norm.weight")
        let output = c.tieWordEmbeddings ? embeddings : try matrix("output.weight", c.vocabSize, h)
        for tensor in file.tensors where !used.contains(tensor.name) {
            throw CheckpointError.unexpectedTensor(file: file.fileName, tensor: tensor.name)
        }
        self.init(
            configuration: c, tokEmbeddings: embeddings, layers: layers, norm: norm, output: output,
            threadCount: threadCount, chunkSize: chunkSize)
    }
}
