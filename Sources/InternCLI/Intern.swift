// The `intern` command: one subcommand per file, each a thin layer over the libraries.
import ArgumentParser

@main
struct Intern: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intern",
        abstract: "InternKit: tokenizer, chat format and tools for the InternLM2 model family.",
        version: "0.1.0",
        subcommands: [
            TokenizeCommand.self, TemplateCommand.self, GenerateCommand.self, ChatCommand.self, LogitsCommand.self,
            InitCommand.self, PerplexityCommand.self, DataCommand.self, ServeCommand.self, BenchCommand.self, QuantizeCommand.self,
        ]
    )
}
