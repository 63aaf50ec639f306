// Where a command finds its tokenizer: `--tokenizer FILE` (a SentencePiece .model or a .gguf) or
// `--model PATH` (a checkpoint directory's tokenizer.model, or a .gguf file's own vocabulary).
import ArgumentParser
import Foundation
import InternCore
import InternModels
import InternTokenizer

struct TokenizerOptions: ParsableArguments {
    @Option(help: "A SentencePiece tokenizer.model file, or a .gguf file.")
    var tokenizer: String?

    @Option(help: "A model directory (its tokenizer.model is used) or a .gguf file.")
    var model: String?

    func load() throws -> any Tokenizer {
        switch (tokenizer, model) {
        case (let file?, nil): return try loadTokenizer(at: file)
        case (nil, let path?): return try loadTokenizer(at: path)
        case (nil, nil): throw ValidationError("give --tokenizer FILE or --model DIR")
        case (_?, _?): throw ValidationError("give either --tokenizer or --model, not both")
        }
    }
}

/// The tokenizer at `path`: a .gguf file, a SentencePiece .model file, or a directory holding tokenizer.model.
func loadTokenizer(at path: String) throws -> any Tokenizer {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw ValidationError("\(path): no such file")
    }
    do {
        if isDirectory.boolValue {
            let file = (path as NSString).appendingPathComponent("tokenizer.model")
            guard FileManager.default.fileExists(atPath: file) else { throw ValidationError("\(file): no such file") }
            return try SentencePieceTokenizer(contentsOf: URL(fileURLWithPath: file))
        }
        if path.lowercased().hasSuffix(".gguf") { return try GGUFTokenizer.load(from: GGUFFile(path: path)) }
        return try SentencePieceTokenizer(contentsOf: URL(fileURLWithPath: path))
    } catch let error as TokenizerError {
        throw ValidationError(error.description)
    } catch let error as CheckpointError {
        throw ValidationError(error.description)
    }
}
