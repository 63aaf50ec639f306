// Options shared by the commands that run a model: where it is and how many threads compute with it,
// and the sampling settings (mlx-swift-examples `llm-tool` shares them through @OptionGroup).
import ArgumentParser
import Foundation
import InternEngine
import InternModels
import InternTokenizer

struct ModelOptions: ParsableArguments {
    @Option(help: "A checkpoint directory: config.json, tokenizer.model, model.safetensors or shards.")
    var model: String

    @Option(help: "Compute threads (default: all active cores).")
    var threads: Int?

    var directory: URL { URL(fileURLWithPath: model) }

    func loadModel() throws -> any LanguageModel {
        guard FileManager.default.fileExists(atPath: model) else { throw ValidationError("\(model): no such directory") }
        return try ModelRegistry.load(directory: directory, threadCount: threads)
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
