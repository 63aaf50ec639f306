// `intern bench`: measurements printed for people and, with --json, for comparison scripts.
import ArgumentParser

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure InternKit's speed.",
        subcommands: [BenchTokenizerCommand.self, BenchServeCommand.self]
    )
}
