// `intern perplexity`: perplexity of a text file, chunked as llama.cpp's llama-perplexity, and with
// --reference the KL divergence and top-1 agreement against another model (e.g. bf16 vs q4_0).
import ArgumentParser
import Foundation
import InternEval
import InternModels
import InternTokenizer

struct PerplexityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text (windows of --context tokens, second half of each scored, as llama-perplexity)."
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "A UTF-8 text file.")
    var file: String

    @Option(help: "A reference model (directory or .gguf) for mean KL divergence and top-1 agreement.")
    var reference: String?

    @Option(help: "Tokens per window.")
    var context = 512

    @Option(help: "Score only the first N windows.")
    var chunks: Int?

    @Flag(help: "Print one JSON object at the end.")
    var json = false

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("\(file): cannot read file") }
        guard let text = String(validating: data, as: UTF8.self) else { throw ValidationError("\(file): not valid UTF-8") }
        let tokenizer = try modelOptions.loadTokenizer()
        let model = try modelOptions.loadModel()
        let referenceModel = try reference.map { try ModelRegistry.load(path: $0, threadCount: modelOptions.threads) }
        // llama.cpp tokenizes with add_special = true: BOS only when the vocabulary adds one.
        let tokens = tokenizer.encode(text, addBOS: true, parseSpecialTokens: false)
        let addsBOS = tokens.count == tokenizer.encode(text, addBOS: false, parseSpecialTokens: false).count + 1
        let start = ContinuousClock.now
        let result: PerplexityResult
        do {
            result = try evaluatePerplexity(
                model: model, reference: referenceModel, tokens: tokens, context: context,
                bos: addsBOS ? tokenizer.bosTokenID : nil, maxChunks: chunks, kvCacheType: modelOptions.kvCacheType
            ) { done, total, partial in
                if !json {
                    FileHandle.standardError.write(Data("[\(done)/\(total)] ppl \(String(format: "%.4f", partial.perplexity))\n".utf8))
                }
            }
        } catch let error as EvaluationError {
            throw ValidationError(error.description)
        }
        let seconds = Double((ContinuousClock.now - start).components.seconds)
        if json {
            var fields = [
                "\"perplexity\": \(result.perplexity)", "\"chunks\": \(result.chunks)", "\"scored_tokens\": \(result.scoredTokens)",
                "\"tokens\": \(tokens.count)", "\"context\": \(context)", "\"seconds\": \(seconds)",
            ]
            if let kl = result.meanKLDivergence, let top1 = result.top1Agreement {
                fields += ["\"mean_kl_divergence\": \(kl)", "\"top1_agreement\": \(top1)"]
            }
            print("{" + fields.joined(separator: ", ") + "}")
        } else {
            print(String(format: "perplexity %.4f over %d tokens (%d windows of %d)", result.perplexity, result.scoredTokens, result.chunks, context))
            if let kl = result.meanKLDivergence, let top1 = result.top1Agreement {
                print(String(format: "vs reference: mean KL %.6f, top-1 agreement %.2f%%", kl, top1 * 100))
            }
        }
    }
}
