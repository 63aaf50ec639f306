// The `intern` command: one subcommand per file, each a thin layer over the libraries.
import ArgumentParser

@main
struct Intern: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intern",
        abstract: "InternKit: tokenizer, chat format and tools for the InternLM2 model family.",
        subcommands: [TokenizeCommand.self, DataCommand.self]
    )
}
