// `intern logits`: the logits at every position of given ids, as a float32 NumPy .npy file of shape
// [T, vocab], computed through the engine's path (KV cache, chunked prefill).
import ArgumentParser
import Foundation
import InternCore
import InternEngine
import InternModels

struct LogitsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Write the logits of every position of token ids to a .npy file."
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Token ids, e.g. 1,2,3.")
    var ids: String

    @Option(help: "Output .npy file (float32, shape [T, vocab]).")
    var out: String

    func run() async throws {
        let tokens = try parseIDs(ids, option: "--ids")
        let model = try modelOptions.loadModel()
        let cache = SimpleKVCache(model: model, capacity: tokens.count, type: modelOptions.kvCacheType)
        var logits = [Float](repeating: 0, count: tokens.count * model.vocabularySize)
        do {
            try tokens.withUnsafeBufferPointer { ids in
                try logits.withUnsafeMutableBufferPointer { try model.forward(ids, cache: cache, allLogits: true, logits: $0.baseAddress!) }
            }
        } catch let error as EngineError {
            throw ValidationError(error.description)
        }
        try NumPyFile.float32(logits, shape: [tokens.count, model.vocabularySize]).write(to: URL(fileURLWithPath: out))
    }
}
