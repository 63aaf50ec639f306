// Broken model directories: each must fail with an error that names the file, the tensor or the key.
import Foundation
import InternCore
import InternModels
import Testing

@Suite struct CheckpointErrorTests {
    static let configuration = InternLM2Configuration(
        hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1, intermediateSize: 24,
        vocabSize: 32, maxPositionEmbeddings: 64)
    static let config = """
        {"model_type": "internlm2", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
         "num_key_value_heads": 1, "intermediate_size": 24, "vocab_size": 32, "max_position_embeddings": 64,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": null, "bias": false}
        """
    static var specs: [TensorSpec] {
        InternLM2WeightNames(configuration: configuration).specs.map { TensorSpec(name: $0.name, dtype: .bf16, shape: $0.shape) }
    }

    func loadError(config: String = Self.config, specs: [TensorSpec] = Self.specs) throws -> (any Error)? {
        let dir = try writeCheckpoint(config: config, specs: specs)
        do {
            _ = try ModelRegistry.load(directory: dir, threadCount: 1)
            return nil
        } catch {
            return error
        }
    }

    @Test func completeCheckpointLoads() throws {
        #expect(try loadError() == nil)
    }

    @Test func missingTensorIsNamed() throws {
        let error = try loadError(specs: Self.specs.filter { $0.name != "model.layers.0.feed_forward.w3.weight" })
        #expect(error as? CheckpointError == .missingTensor(file: "model.safetensors", tensor: "model.layers.0.feed_forward.w3.weight"))
    }

    @Test func extraTensorIsNamed() throws {
        let error = try loadError(specs: Self.specs + [TensorSpec(name: "model.layers.1.attention.wo.weight", dtype: .bf16, shape: [16, 16])])
        #expect(error as? CheckpointError == .unexpectedTensor(file: "model.safetensors", tensor: "model.layers.1.attention.wo.weight"))
    }

    @Test func wrongShapeNamesExpectedAndActual() throws {
        let specs = Self.specs.map { $0.name == "model.layers.0.attention.wqkv.weight" ? TensorSpec(name: $0.name, dtype: .bf16, shape: [48, 16]) : $0 }
        let error = try loadError(specs: specs)
        #expect(
            error as? CheckpointError
                == .shapeMismatch(file: "model.safetensors", tensor: "model.layers.0.attention.wqkv.weight", expected: [32, 16], actual: [48, 16]))
        #expect(
            (error as? CheckpointError)?.description == "model.safetensors: tensor 'model.layers.0.attention.wqkv.weight' has shape [48, 16], expected [32, 16]"
        )
    }

    @Test func missingConfigKeyIsNamed() throws {
        let error = try loadError(config: Self.config.replacingOccurrences(of: "\"intermediate_size\": 24,", with: ""))
        #expect(error as? ConfigError == .missingKey(file: "config.json", key: "intermediate_size"))
    }

    @Test(arguments: [
        ("\"num_key_value_heads\": 1", "\"num_key_value_heads\": 3", "num_key_value_heads"),
        ("\"hidden_size\": 16", "\"hidden_size\": 0", "hidden_size"),
        ("\"rms_norm_eps\": 1e-5", "\"rms_norm_eps\": -1", "rms_norm_eps"),
        ("\"bias\": false", "\"bias\": true", "bias"),
        ("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 2.0}", "rope_scaling.type"),
        ("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 0.5}", "rope_scaling.factor"),
    ])
    func outOfRangeConfigValueIsNamed(change: (String, String, String)) throws {
        let error = try loadError(config: Self.config.replacingOccurrences(of: change.0, with: change.1))
        guard case .invalidValue(let file, let key, _, _)? = error as? ConfigError else {
            Issue.record("expected invalidValue for \(change.2), got \(String(describing: error))")
            return
        }
        #expect(file == "config.json")
        #expect(key == change.2)
    }

    @Test func unsupportedModelTypeIsNamed() throws {
        let error = try loadError(config: Self.config.replacingOccurrences(of: "\"internlm2\"", with: "\"gpt2\""))
        #expect(error as? ConfigError == .unsupportedModelType(file: "config.json", modelType: "gpt2", supported: ["internlm2"]))
    }

    @Test func truncatedWeightsAreNamed() throws {
        let dir = try writeCheckpoint(config: Self.config, specs: Self.specs)
        let url = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: url)
        try data.prefix(data.count - 100).write(to: url)
        #expect(throws: CheckpointError.self) { _ = try ModelRegistry.load(directory: dir, threadCount: 1) }
        do { _ = try ModelRegistry.load(directory: dir, threadCount: 1) } catch let error as CheckpointError {
            #expect(error.description.contains("model.safetensors"))
            #expect(error.description.contains("output.weight"))
        }
    }

    @Test func publishedShapesValidate() throws {
        for c in [InternLM2Configuration.internLM2_1_8B, .internLM2_7B, .internLM2_20B] {
            try c.validate()
            #expect(c.headDim == 128)
            #expect(c.vocabSize == 92544)
        }
    }
}

@Suite struct ConfigurationTests {
    /// internlm2-chat-1_8b's config.json as published (auto_map and other keys we do not use included).
    static let published = """
        {
          "architectures": ["InternLM2ForCausalLM"],
          "attn_implementation": "eager",
          "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config",
                       "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"},
          "bias": false, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 2048,
          "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 32768,
          "model_type": "internlm2", "num_attention_heads": 16, "num_hidden_layers": 24,
          "num_key_value_heads": 8, "pad_token_id": 2, "rms_norm_eps": 1e-05,
          "rope_scaling": {"type": "dynamic", "factor": 2.0}, "rope_theta": 1000000,
          "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.37.1",
          "use_cache": true, "vocab_size": 92544
        }
        """

    @Test func decodesThePublishedConfig() throws {
        let c = try JSONDecoder().decode(InternLM2Configuration.self, from: Data(Self.published.utf8))
        #expect(c == .internLM2_1_8B)
        #expect(c.kvGroupSize == 2)
    }

    @Test func absentKVHeadsDefaultToHeads() throws {
        let text = Self.published.replacingOccurrences(of: "\"num_key_value_heads\": 8,", with: "")
        let c = try JSONDecoder().decode(InternLM2Configuration.self, from: Data(text.utf8))
        #expect(c.numKeyValueHeads == 16)
    }

    @Test func ropeTypeSpellingIsAccepted() throws {
        let text = Self.published.replacingOccurrences(
            of: "{\"type\": \"dynamic\", \"factor\": 2.0}",
            with: "{\"rope_type\": \"linear\", \"factor\": 4.0}")
        let c = try JSONDecoder().decode(InternLM2Configuration.self, from: Data(text.utf8))
        #expect(c.ropeScaling == .init(type: .linear, factor: 4))
    }
}
