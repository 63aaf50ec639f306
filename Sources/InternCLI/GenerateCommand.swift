// `intern generate`: a continuation of a prompt, streamed to stdout, or one JSON object with --json.
import ArgumentParser
import Foundation
import InternChat
import InternEngine
import InternModels
import InternTokenizer

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt with a model.",
        discussion: """
            Streams the continuation to stdout and a summary (tokens, tokens/s) to stderr. With --json, prints
            one object at the end: {"ids": [...], "text": ..., "finish_reason": ..., "prompt_tokens": ...,
            "completion_tokens": ...}. Generation stops at </s> (2), <|im_end|> (92542), a --stop text,
            --max-tokens or the context length.
            """
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(help: "The prompt text (encoded with BOS).")
    var prompt: String?

    @Option(help: "Prompt token ids, e.g. 1,2,3 (replaces --prompt).")
    var promptIds: String?

    @Flag(help: "Wrap the prompt in the InternLM2 chat template as one user message (stops also at <|action_end|>).")
    var chat = false

    @Option(help: "With --chat: a system message before the user's.")
    var system: String?

    @Flag(help: "Print one JSON object at the end instead of streaming text.")
    var json = false

    func run() async throws {
        let tokenizer = try modelOptions.loadTokenizer()
        var parameters = sampling.parameters
        parameters.kvCacheType = modelOptions.kvCacheType
        let ids: [Int32]
        switch (prompt, promptIds, chat) {
        case (_?, _?, _): throw ValidationError("give either --prompt or --prompt-ids, not both")
        case (nil, let list?, false): ids = try parseIDs(list, option: "--prompt-ids")
        case (nil, _?, true): throw ValidationError("--chat needs --prompt TEXT (it renders the template itself)")
        case (let text?, nil, false): ids = tokenizer.encode(text, addBOS: true, parseSpecialTokens: true)
        case (let text?, nil, true):
            let format = try modelOptions.chatFormat(tokenizer: tokenizer)
            let messages = (system.map { [ChatMessage.system($0)] } ?? []) + [.user(text)]
            do { ids = try format.promptIDs(for: messages) } catch { throw ValidationError("\(error)") }
            parameters.stopTokenIDs.formUnion(format.stopTokenIDs)
        case (nil, nil, _): throw ValidationError("give --prompt TEXT or --prompt-ids 1,2,3")
        }
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
        let loadStart = ContinuousClock.now
        let model = try modelOptions.loadModel()
        let loadTime = ContinuousClock.now - loadStart
        let generator = Generator(model: model, tokenizer: tokenizer)
        var info: GenerationInfo?
        do {
            for try await event in generator.generate(prompt: ids, parameters: parameters) {
                switch event {
                case .text(let piece):
                    if !json {
                        FileHandle.standardOutput.write(Data(piece.utf8))
                    }
                case .done(let summary): info = summary
                }
            }
        } catch let error as EngineError {
            throw ValidationError(error.description)
        }
        guard let info else { return }
        if json {
            let line =
                "{\"ids\": \(JSONText.intArray(info.tokenIDs)), \"text\": \(JSONText.quoted(info.text)), \"finish_reason\": \"\(info.finishReason.rawValue)\", \"prompt_tokens\": \(info.promptTokens), \"completion_tokens\": \(info.completionTokens)}\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        } else {
            FileHandle.standardOutput.write(Data("\n".utf8))
        }
        let summary = String(
            format: "[load %.2f s, prompt %d tokens %.2f s (%.1f t/s), generated %d tokens %.2f s (%.2f t/s), finish %@]\n",
            Double(loadTime.components.seconds) + Double(loadTime.components.attoseconds) * 1e-18,
            info.promptTokens, info.promptSeconds, info.promptTokensPerSecond, info.completionTokens,
            info.generationSeconds, info.tokensPerSecond, info.finishReason.rawValue)
        FileHandle.standardError.write(Data(summary.utf8))
    }
}
