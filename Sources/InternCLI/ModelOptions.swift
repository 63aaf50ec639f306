// Options shared by the commands that run a model: where it is and how many threads compute with it,
// and the sampling settings (mlx-swift-examples `llm-tool` shares them through @OptionGroup).
import ArgumentParser
import Foundation
import InternChat
import InternCore
import InternEngine
import InternKernels
import InternModels
import InternTokenizer

struct ModelOptions: ParsableArguments {
    @Option(help: "A checkpoint directory (config.json, tokenizer.model, model.safetensors or shards) or a .gguf file.")
    var model: String

    @Option(help: "Compute threads (default: all active cores).")
    var threads: Int?

    @Option(help: "Chat template: internlm2, chatml or smollm2 (default: the one the model carries).")
    var chatTemplate: String?

    @Option(
        help: ArgumentHelp(
            "How the KV cache stores keys and values: f16, q8_0 or f32.",
            discussion: """
                f16 (the default, as llama.cpp's) halves f32's memory and attention reads; q8_0 (int8 in blocks \
                of 32, one scale each) halves f16's; f32 is exact.
                """),
        transform: { name in
            guard let type = KVCacheType(rawValue: name) else {
                throw ValidationError("unknown --kv-cache-type '\(name)'; choose \(KVCacheType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return type
        })
    var kvCacheType: KVCacheType = .f16

    @Option(
        help: ArgumentHelp(
            "How activations meet the weights: f32, bf16, int8 or int16 (default: the fastest measured kernels).",
            discussion: """
                f32 is exact everywhere. By default, on CPUs with AVX512-BF16, products of bf16 weights round \
                the activations to bf16 (vdpbf16ps, llama.cpp's arithmetic: about twice the exact prefill's \
                speed, faster decode; logits move by ~1e-2); bf16 names that default and is refused on other \
                CPUs. Quantized weights take 8-bit activations in prefill and 8- or 16-bit ones in \
                decode; int8 and int16 force one of them. The same as INTERNKIT_ACTIVATIONS, for the whole \
                process (a --reference model too).
                """),
        transform: { name in
            guard let precision = WeightMatrix.ActivationPrecision(rawValue: name) else {
                throw ValidationError("unknown --activations '\(name)'; choose f32, bf16, int8, int16")
            }
            return precision
        })
    var activations: WeightMatrix.ActivationPrecision?

    var directory: URL { URL(fileURLWithPath: model) }

    func loadModel() throws -> any LanguageModel {
        guard FileManager.default.fileExists(atPath: model) else { throw ValidationError("\(model): no such file or directory") }
        if let activations {
            if let reason = WeightMatrix.unsupportedReason(activations) {
                throw ValidationError("--activations \(activations.rawValue): \(reason)")
            }
            // The kernels read INTERNKIT_ACTIVATIONS once, at the first product: set it before the model loads.
            setenv("INTERNKIT_ACTIVATIONS", activations.rawValue, 1)
        }
        let loaded = try ModelRegistry.load(path: model, threadCount: threads)
        if let reason = kvCacheType.unsupportedReason(headDim: loaded.kvCacheHeadDim) {
            throw ValidationError("--kv-cache-type \(kvCacheType.rawValue): \(reason)")
        }
        return loaded
    }

    /// The chat format: --chat-template, else the model's own template (GGUF `tokenizer.chat_template` or
    /// tokenizer_config.json `chat_template`) when InternKit recognises it, else InternLM2's for a checkpoint
    /// directory without one.
    func chatFormat(tokenizer: any Tokenizer) throws -> InternLM2ChatFormat {
        let names = ChatTemplate.builtIn.map(\.name).joined(separator: ", ")
        if let chatTemplate {
            guard let template = ChatTemplate.named(chatTemplate) else {
                throw ValidationError("unknown --chat-template '\(chatTemplate)'; built-in templates: \(names)")
            }
            return InternLM2ChatFormat(tokenizer: tokenizer, template: template)
        }
        let jinja: String?
        let source: String
        if model.lowercased().hasSuffix(".gguf") {
            jinja = try GGUFFile(path: model)["tokenizer.chat_template"]?.stringValue
            source = "\(model): tokenizer.chat_template"
        } else {
            let config = directory.appendingPathComponent("tokenizer_config.json")
            source = "\(config.path): chat_template"
            if let data = FileManager.default.contents(atPath: config.path),
                let text = String(validating: data, as: UTF8.self), case .object = try? JSONValue(parsing: text)
            {
                jinja = (try? JSONValue(parsing: text))?["chat_template"]?.stringValue
            } else {
                jinja = nil
            }
        }
        guard let jinja else { return InternLM2ChatFormat(tokenizer: tokenizer, template: .internLM2) }
        guard let template = ChatTemplate.recognize(jinja: jinja) else {
            throw ValidationError("\(source) is not a chat template InternKit knows; pick a built-in one with --chat-template (\(names))")
        }
        return InternLM2ChatFormat(tokenizer: tokenizer, template: template)
    }

    func loadTokenizer() throws -> any Tokenizer {
        try InternCLI.loadTokenizer(at: model)
    }
}

struct SamplingOptions: ParsableArguments {
    @Option(help: "Most new tokens.")
    var maxTokens = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0.8

    @Option(help: "Nucleus sampling: keep the most likely tokens up to this probability mass.")
    var topP: Float = 0.8

    @Option(help: "Keep the K most likely tokens (0: all).")
    var topK = 0

    @Option(help: "Drop tokens less likely than this fraction of the top token's probability.")
    var minP: Float = 0

    @Option(help: "Repetition penalty over the prompt and output (1: off).")
    var repetitionPenalty: Float = 1

    @Option(help: "Presence penalty over the output (0: off).")
    var presencePenalty: Float = 0

    @Option(help: "Frequency penalty over the output (0: off).")
    var frequencyPenalty: Float = 0

    @Option(help: "Random seed, for reproducible sampling.")
    var seed: UInt64?

    @Option(help: "Stop when the output contains this text (repeatable).")
    var stop: [String] = []

    @Option(help: "Most positions (prompt + output); default: the model's maximum.")
    var context: Int?

    var parameters: GenerationParameters {
        var p = GenerationParameters()
        p.maxTokens = maxTokens
        p.sampling = SamplingSettings(temperature: temperature, topK: topK, topP: topP, minP: minP)
        p.repetitionPenalty = repetitionPenalty
        p.presencePenalty = presencePenalty
        p.frequencyPenalty = frequencyPenalty
        p.seed = seed
        p.stopStrings = stop
        p.contextLength = context
        return p
    }
}

/// Parses "1,2,3" into ids.
func parseIDs(_ text: String, option: String) throws -> [Int32] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    var ids: [Int32] = []
    for part in parts where !part.isEmpty {
        guard let id = Int32(part) else { throw ValidationError("\(option): '\(part)' is not a token id") }
        ids.append(id)
    }
    guard !ids.isEmpty else { throw ValidationError("\(option): no ids") }
    return ids
}
