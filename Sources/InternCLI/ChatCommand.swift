// `intern chat`: an interactive terminal chat. Each turn renders the whole history with the InternLM2
// chat template and streams the reply; Ctrl-C stops a reply (what was said so far stays in the history)
// without leaving; `/reset` clears the history, `/exit` or end of input leaves.
// The KV cache is kept between turns (a GenerationSession): only the part of the rendered conversation
// that differs from what the cache holds is computed again.
import ArgumentParser
import Dispatch
import Foundation
import InternChat
import InternEngine
import InternModels
import InternTokenizer

struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a model in the terminal.",
        discussion: "Commands: /reset clears the history, /exit leaves (so does Ctrl-D). Ctrl-C stops a reply."
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(help: "A system message at the start of the conversation.")
    var system: String?

    func run() async throws {
        let tokenizer = try modelOptions.loadTokenizer()
        let model = try modelOptions.loadModel()
        let format = try modelOptions.chatFormat(tokenizer: tokenizer)
        let generator = Generator(model: model, tokenizer: tokenizer)
        var parameters = sampling.parameters
        parameters.stopTokenIDs.formUnion(format.stopTokenIDs)

        // Ctrl-C sets the flag the generation loop checks once per token; the process keeps running.
        let stop = StopFlag()
        signal(SIGINT, SIG_IGN)
        let interrupts = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        interrupts.setEventHandler {
            if !stop.requestIfGenerating() { Terminal.write("\n(/exit or Ctrl-D to leave)\n> ") }
        }
        interrupts.resume()
        defer { interrupts.cancel() }

        let session = GenerationSession(model: model, contextLength: parameters.contextLength, kvCacheType: modelOptions.kvCacheType)
        var history: [ChatMessage] = system.map { [.system($0)] } ?? []
        Terminal.write("Chatting with \(modelOptions.model). /reset clears the history, /exit leaves.\n")
        while true {
            Terminal.write("> ")
            guard let line = readLine(strippingNewline: true) else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            if input == "/exit" { break }
            if input == "/reset" {
                history = system.map { [.system($0)] } ?? []
                session.reset()
                Terminal.write("(history cleared)\n")
                continue
            }
            history.append(.user(line))
            let prompt: [Int32]
            do { prompt = try format.promptIDs(for: history) } catch {
                history.removeLast()
                Terminal.write("error: \(error)\n")
                continue
            }
            stop.begin()
            let turn = Task.detached { [parameters] in
                try generator.run(prompt: prompt, parameters: parameters, session: session, isCancelled: { stop.isRequested }) { Terminal.write($0) }
            }
            do {
                let info = try await turn.value
                stop.end()
                Terminal.write(info.finishReason == .cancelled ? " [stopped]\n" : "\n")
                history.append(.assistant(info.text))
            } catch {
                stop.end()
                history.removeLast()
                Terminal.write("\nerror: \(error)\n")
            }
        }
        Terminal.write("\n")
    }
}

/// Whether a reply is being generated and whether Ctrl-C asked it to stop, shared with the signal handler.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var generating = false
    private var requested = false

    func begin() { lock.withLock { (generating, requested) = (true, false) } }
    func end() { lock.withLock { generating = false } }
    var isRequested: Bool { lock.withLock { requested } }

    /// Asks the running generation to stop; false when none is running.
    func requestIfGenerating() -> Bool {
        lock.withLock {
            if generating { requested = true }
            return generating
        }
    }
}

/// Unbuffered writes to stdout, so streamed text appears as it is produced.
enum Terminal {
    static func write(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }
}
