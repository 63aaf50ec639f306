// `intern init`: a random-weight checkpoint in the real Hugging Face layout (config.json, tokenizer.model,
// model.safetensors or ~2 GB shards with model.safetensors.index.json), as vLLM's dummy load format serves
// benchmarks: for tests, benchmarks and an offline quick start. The text it generates is noise.
import ArgumentParser
import Foundation
import InternCore
import InternModels

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a random-weight InternLM2 checkpoint (real layout, real tokenizer).",
        discussion: "Presets: tiny (hidden 64, 2 layers), small (hidden 1024, 8 layers), 1_8b and 7b (the published shapes)."
    )

    enum Preset: String, ExpressibleByArgument, CaseIterable {
        case tiny, small
        case oneEightB = "1_8b"
        case sevenB = "7b"

        var configuration: InternLM2Configuration {
            let dynamic = InternLM2Configuration.RopeScaling(type: .dynamic, factor: 2.0)
            switch self {
            case .tiny:
                return InternLM2Configuration(
                    hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                    intermediateSize: 128, ropeScaling: dynamic)
            case .small:
                return InternLM2Configuration(
                    hiddenSize: 1024, numHiddenLayers: 8, numAttentionHeads: 8, numKeyValueHeads: 4,
                    intermediateSize: 4096, ropeScaling: dynamic)
            case .oneEightB: return .internLM2_1_8B
            case .sevenB: return .internLM2_7B
            }
        }
    }

    enum WeightDType: String, ExpressibleByArgument, CaseIterable {
        case bf16, f32
        var dtype: DType { self == .bf16 ? .bf16 : .f32 }
    }

    @Option(help: "tiny | small | 1_8b | 7b")
    var preset: Preset

    @Option(help: "The directory to write (created; existing weight files are replaced).")
    var out: String

    @Option(help: "bf16 | f32")
    var dtype: WeightDType = .bf16

    @Option(help: "Seed of the random weights.")
    var seed: UInt64 = 0

    @Option(help: "The tokenizer.model to copy (default: the repository's Assets/internlm2/tokenizer.model).")
    var tokenizer: String?

    /// The repository's tokenizer, found from this source file's path (the CLI is built from source).
    static let bundledTokenizer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Assets/internlm2/tokenizer.model")

    /// Shards are cut near this size, as HF's `max_shard_size="2GB"`.
    static let maxShardBytes = 2_000_000_000

    func run() async throws {
        let fm = FileManager.default
        let directory = URL(fileURLWithPath: out)
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let tokenizerSource = tokenizer.map { URL(fileURLWithPath: $0) } ?? Self.bundledTokenizer
        guard fm.fileExists(atPath: tokenizerSource.path) else {
            throw ValidationError("\(tokenizerSource.path): no such file; pass --tokenizer FILE")
        }
        let configuration = preset.configuration
        for name in (try? fm.contentsOfDirectory(atPath: directory.path)) ?? []
        where name.hasSuffix(".safetensors") || name == Checkpoint.indexFileName || name == "tokenizer.model" {
            try fm.removeItem(at: directory.appendingPathComponent(name))
        }
        try fm.copyItem(at: tokenizerSource, to: directory.appendingPathComponent("tokenizer.model"))
        try writeConfig(configuration, to: directory.appendingPathComponent("config.json"))

        let specs = InternLM2WeightNames(configuration: configuration).specs.map {
            TensorSpec(name: $0.name, dtype: dtype.dtype, shape: $0.shape)
        }
        var shards: [[TensorSpec]] = [[]]
        var shardBytes = 0
        for spec in specs {
            if shardBytes > 0 && shardBytes + spec.byteCount > Self.maxShardBytes {
                shards.append([])
                shardBytes = 0
            }
            shards[shards.count - 1].append(spec)
            shardBytes += spec.byteCount
        }
        let seed = self.seed
        var weightMap: [String: String] = [:]
        for (i, shard) in shards.enumerated() {
            let file = shards.count == 1 ? Checkpoint.singleFileName : String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
            try SafeTensorsWriter.write(to: directory.appendingPathComponent(file), tensors: shard) { spec, bytes in
                let index = specs.firstIndex(of: spec)!
                RandomWeights.fill(bytes, dtype: spec.dtype, isNorm: spec.shape.count == 1, seed: seed &+ UInt64(index))
            }
            for spec in shard { weightMap[spec.name] = file }
        }
        if shards.count > 1 {
            let total = specs.reduce(0) { $0 + $1.byteCount }
            let entries = weightMap.keys.sorted().map { "    \(JSONText.quoted($0)): \(JSONText.quoted(weightMap[$0]!))" }
            let index = "{\n  \"metadata\": {\"total_size\": \(total)},\n  \"weight_map\": {\n" + entries.joined(separator: ",\n") + "\n  }\n}\n"
            try Data(index.utf8).write(to: directory.appendingPathComponent(Checkpoint.indexFileName))
        }
        let total = specs.reduce(0) { $0 + $1.byteCount }
        print("wrote \(directory.path): \(preset.rawValue), \(specs.count) tensors, \(total / 1_000_000) MB in \(shards.count) file(s)")
    }

    private func writeConfig(_ c: InternLM2Configuration, to url: URL) throws {
        let scaling = c.ropeScaling.map { "{\"type\": \"\($0.type.rawValue)\", \"factor\": \($0.factor)}" } ?? "null"
        let text = """
            {
              "architectures": ["InternLM2ForCausalLM"],
              "model_type": "internlm2",
              "hidden_size": \(c.hiddenSize),
              "num_hidden_layers": \(c.numHiddenLayers),
              "num_attention_heads": \(c.numAttentionHeads),
              "num_key_value_heads": \(c.numKeyValueHeads),
              "intermediate_size": \(c.intermediateSize),
              "vocab_size": \(c.vocabSize),
              "max_position_embeddings": \(c.maxPositionEmbeddings),
              "rms_norm_eps": \(c.rmsNormEps),
              "rope_theta": \(c.ropeTheta),
              "rope_scaling": \(scaling),
              "hidden_act": "silu",
              "bias": false,
              "tie_word_embeddings": false,
              "bos_token_id": 1,
              "eos_token_id": 2,
              "pad_token_id": 2,
              "torch_dtype": "\(dtype == .bf16 ? "bfloat16" : "float32")"
            }

            """
        try Data(text.utf8).write(to: url)
    }
}

/// Random weights: uniform with standard deviation 0.02 (HF's initializer_range) for matrices, 1 for norms.
enum RandomWeights {
    static func fill(_ bytes: UnsafeMutableRawBufferPointer, dtype: DType, isNorm: Bool, seed: UInt64) {
        let count = bytes.count / dtype.byteSize
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 0x1234_5678
        // Uniform on [-a, a] has standard deviation a / sqrt(3).
        let a = Float(0.02 * 3.0.squareRoot())
        for i in 0..<count {
            let value: Float
            if isNorm {
                value = 1
            } else {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                value = (Float(state >> 40) / Float(1 << 24) * 2 - 1) * a
            }
            switch dtype {
            case .f32: bytes.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            case .bf16: bytes.storeBytes(of: UInt16(truncatingIfNeeded: value.bitPattern >> 16).littleEndian, toByteOffset: i * 2, as: UInt16.self)
            case .f16: bytes.storeBytes(of: Float16(value).bitPattern.littleEndian, toByteOffset: i * 2, as: UInt16.self)
            case .u8: bytes.storeBytes(of: UInt8(truncatingIfNeeded: state), toByteOffset: i, as: UInt8.self)
            }
        }
    }
}
