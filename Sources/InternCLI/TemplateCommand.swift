// `intern template`: shows exactly what an InternLM2 chat model sees for a conversation.
// Synchronous on purpose: Swift 6.3 crashes in release builds (LLVM coroutine splitting) on async
// commands that call typed-throws functions.
import ArgumentParser
import Foundation
import InternChat
import InternTokenizer

struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Render a conversation in the InternLM2 chat format and show its ids.",
        discussion: """
            MESSAGES is a JSON list of OpenAI-style messages (roles system, user, assistant, tool or environment;
            assistant tool_calls; content as text). TOOLS is a JSON list of OpenAI tools or function objects.
            """
    )

    @OptionGroup var source: TokenizerOptions

    @Option(help: "A JSON file with the list of messages.")
    var messages: String

    @Option(help: "A JSON file with the list of tools to declare.")
    var tools: String?

    @Flag(help: "Declare the code interpreter (InternLM2-Chat's default interpreter prompt).")
    var interpreter = false

    @Flag(help: "Do not end with the assistant generation prompt.")
    var noGenerationPrompt = false

    @Flag(help: "Print one JSON object {\"text\", \"ids\"} instead of the text and a table of pieces.")
    var json = false

    func run() throws {
        let tokenizer = try source.load()
        let conversation = try ChatMessage.conversation(json: Self.readJSON(messages))
        let declared = try tools.map { try ToolDeclaration.list(json: Self.readJSON($0)) } ?? []
        let segments = InternLM2ChatFormat.segments(
            for: conversation, tools: declared,
            interpreter: interpreter ? InternLM2ChatFormat.defaultInterpreterPrompt : nil,
            addGenerationPrompt: !noGenerationPrompt)
        let text = InternLM2ChatFormat.text(of: segments)
        let ids = try InternLM2ChatFormat(tokenizer: tokenizer).ids(of: segments)
        let out = StandardOutput()
        defer { out.flush() }
        if json {
            out.write("{\"text\": \(JSONText.quoted(text)), \"ids\": \(JSONText.intArray(ids))}\n")
            return
        }
        out.write(text)
        out.write(text.hasSuffix("\n") ? "" : "\n")
        out.write("--- \(ids.count) tokens\n")
        for id in ids { out.write("\(id)\t\(String(reflecting: tokenizer.displayPiece(for: id)))\n") }
    }

    static func readJSON(_ path: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(path): cannot read file") }
        guard let text = String(validating: data, as: UTF8.self) else { throw ValidationError("\(path): not valid UTF-8") }
        do {
            return try JSONValue(parsing: text)
        } catch {
            throw ValidationError("\(path): \(error)")
        }
    }
}
