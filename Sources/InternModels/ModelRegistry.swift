// The one table from config.json's `model_type` to the code that loads it (mlx-lm `_get_classes`,
// mlx-swift-lm `LLMTypeRegistry`).
public import Foundation
public import InternCore

public enum ModelRegistry {
    /// A loader: the checkpoint directory and the number of threads to compute with.
    public typealias Loader = @Sendable (URL, Int?) throws -> any LanguageModel

    /// Loaders by model_type.
    public static let loaders: [String: Loader] = [
        "internlm2": { directory, threads in try InternLM2Model(directory: directory, threadCount: threads) }
    ]

    /// Loads a model from a checkpoint directory or a `.gguf` file (architectures internlm2 and llama).
    public static func load(path: String, threadCount: Int? = nil) throws -> any LanguageModel {
        if path.lowercased().hasSuffix(".gguf") {
            return try InternLM2Model(gguf: GGUFFile(path: path), threadCount: threadCount)
        }
        return try load(directory: URL(fileURLWithPath: path), threadCount: threadCount)
    }

    /// Loads the model in `directory` by its config.json's model_type.
    public static func load(directory: URL, threadCount: Int? = nil) throws -> any LanguageModel {
        struct TypeOnly: Decodable {
            let modelType: String?
            enum CodingKeys: String, CodingKey { case modelType = "model_type" }
        }
        let url = directory.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: url) else { throw ConfigError.fileNotFound(path: url.path) }
        let file = "config.json"
        let header: TypeOnly
        do { header = try JSONDecoder().decode(TypeOnly.self, from: data) } catch {
            throw ConfigError.invalidJSON(file: file, reason: "\(error)")
        }
        guard let type = header.modelType else { throw ConfigError.missingKey(file: file, key: "model_type") }
        guard let loader = loaders[type] else {
            throw ConfigError.unsupportedModelType(file: file, modelType: type, supported: loaders.keys.sorted())
        }
        return try loader(directory, threadCount)
    }
}
