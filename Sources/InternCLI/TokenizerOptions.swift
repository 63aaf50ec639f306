// Where a command finds its tokenizer: `--tokenizer FILE` or `--model DIR` (DIR/tokenizer.model).
import ArgumentParser
import Foundation
import InternTokenizer

struct TokenizerOptions: ParsableArguments {
    @Option(help: "A SentencePiece tokenizer.model file.")
    var tokenizer: String?

    @Option(help: "A model directory; its tokenizer.model is used.")
    var model: String?

    func load() throws -> any Tokenizer {
        let path: String
        switch (tokenizer, model) {
        case (let file?, nil): path = file
        case (nil, let dir?): path = (dir as NSString).appendingPathComponent("tokenizer.model")
        case (nil, nil): throw ValidationError("give --tokenizer FILE or --model DIR")
        case (_?, _?): throw ValidationError("give either --tokenizer or --model, not both")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("\(path): no such file")
        }
        do {
            return try SentencePieceTokenizer(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ValidationError(error.description)
        }
    }
}
