// `intern bench tokenizer`: single-threaded encoding throughput over a corpus, one encode call per line,
// as Benchmarks/tokenizer/compare-sentencepiece.py runs sentencepiece on the same lines.
import ArgumentParser
import Foundation
import InternTokenizer

struct BenchTokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Encode every line of a corpus and report MB/s (single thread, best of N runs)."
    )

    @OptionGroup var source: TokenizerOptions

    @Option(help: "A UTF-8 text file; each line is encoded separately.")
    var corpus: String

    @Option(help: "Timed runs; the best is reported.")
    var runs = 3

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let loadStart = ContinuousClock.now
        let tokenizer = try source.load()
        let loadSeconds = (ContinuousClock.now - loadStart).seconds
        guard let data = FileManager.default.contents(atPath: corpus) else { throw ValidationError("\(corpus): cannot read file") }
        guard let text = String(validating: data, as: UTF8.self) else { throw ValidationError("\(corpus): not valid UTF-8") }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if text.hasSuffix("\n") { lines.removeLast() }  // the final newline ends the last line
        var best = Double.infinity
        var tokens = 0
        var checksum = TokenIDChecksum()
        for _ in 0..<max(1, runs) {
            var ids: [[TokenID]] = []
            ids.reserveCapacity(lines.count)
            let start = ContinuousClock.now
            for line in lines { ids.append(tokenizer.encode(line)) }
            best = min(best, (ContinuousClock.now - start).seconds)
            tokens = ids.reduce(0) { $0 + $1.count }
            checksum = TokenIDChecksum()
            for line in ids { checksum.combine(line) }
        }
        let megabytes = Double(data.count) / 1e6
        if json {
            print(
                "{\"bytes\": \(data.count), \"lines\": \(lines.count), \"tokens\": \(tokens), \"seconds\": \(best), "
                    + "\"mb_per_s\": \(megabytes / best), \"ids_fnv1a\": \"\(checksum.hex)\", \"load_seconds\": \(loadSeconds)}")
        } else {
            print(
                String(
                    format: "%.1f MB, %d lines, %d tokens: %.3f s, %.2f MB/s, %.0f tokens/s (load %.2f s)",
                    megabytes, lines.count, tokens, best, megabytes / best, Double(tokens) / best, loadSeconds))
        }
    }

}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
