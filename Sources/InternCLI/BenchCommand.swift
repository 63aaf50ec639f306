// `intern bench`: measurements printed for people and, with --json, for comparison scripts.
// `intern bench --model M` (the default subcommand, `model`) measures what llama-bench measures: prompt
// processing of N tokens in one forward call (prefill tokens/s), then generation of M tokens one at a
// time with the KV cache (decode tokens/s), plus the load time and the peak resident memory. Both start
// from an empty cache, or with `--depth D` from a cache already holding D tokens (llama-bench's `-d`:
// speed deep into a long conversation, where attention reads the whole cache). Token ids are
// pseudo-random (fixed seed), as llama-bench uses random tokens; the logits are not sampled.
import ArgumentParser
import Foundation
import InternEngine
import InternModels

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure InternKit's speed.",
        subcommands: [BenchModelCommand.self, BenchTokenizerCommand.self, BenchServeCommand.self],
        defaultSubcommand: BenchModelCommand.self
    )
}

struct BenchModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Prefill and decode tokens/s, load seconds and peak memory of a model (like llama-bench -p/-n)."
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "Prompt tokens processed in one forward call (0: skip).")
    var promptTokens = 512

    @Option(help: "Tokens generated one at a time (0: skip).")
    var genTokens = 128

    @Option(help: "Tokens already in the KV cache when each measurement starts (llama-bench -d).")
    var depth = 0

    @Option(help: "Timed repetitions; the best of each measurement is reported.")
    var repetitions = 1

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard promptTokens >= 0, genTokens >= 0, depth >= 0, repetitions >= 1 else {
            throw ValidationError("--prompt-tokens, --gen-tokens and --depth must be ≥ 0 and --repetitions ≥ 1")
        }
    }

    func run() throws {
        let loadStart = ContinuousClock.now
        let model = try options.loadModel()
        let loadSeconds = (ContinuousClock.now - loadStart).seconds
        let measured = max(promptTokens, genTokens, 1)  // the longest measurement (1: the warm-up token)
        let positions = depth + measured
        guard positions <= model.maxSequenceLength else {
            throw ValidationError(
                "--depth \(depth) plus \(measured) tokens is \(positions) positions, beyond the model's maximum of \(model.maxSequenceLength)"
            )
        }
        let cache = SimpleKVCache(model: model, capacity: positions, type: options.kvCacheType)
        var logits = [Float](repeating: 0, count: model.vocabularySize)
        var generator = SeededGenerator(seed: 0x1234_5678)
        let vocab = UInt64(model.vocabularySize)
        let prompt = (0..<max(promptTokens, 1)).map { _ in Int32(generator.next() % vocab) }
        let context = (0..<depth).map { _ in Int32(generator.next() % vocab) }
        var bestPrefill = Double.infinity, bestDecode = Double.infinity
        try logits.withUnsafeMutableBufferPointer { out in
            // Untimed warm-up, as llama-bench's: one token (the caches, the pages of the mapping, the thread pool)
            // and, when prefill is measured, the whole prompt once (so no timed run pays for the first touches of
            // the prefill's buffers); then the depth's tokens are prefilled once (untimed) and every measurement
            // truncates back to them.
            try [prompt[0]].withUnsafeBufferPointer { try model.forward($0, cache: cache, allLogits: false, logits: out.baseAddress!) }
            cache.reset()
            if promptTokens > 0 {
                try prompt.withUnsafeBufferPointer { try model.forward($0, cache: cache, allLogits: false, logits: out.baseAddress!) }
                cache.reset()
            }
            if depth > 0 {
                try context.withUnsafeBufferPointer { try model.forward($0, cache: cache, allLogits: false, logits: out.baseAddress!) }
            }
            for _ in 0..<repetitions {
                if promptTokens > 0 {
                    cache.truncate(to: depth)
                    let start = ContinuousClock.now
                    try prompt.withUnsafeBufferPointer { try model.forward($0, cache: cache, allLogits: false, logits: out.baseAddress!) }
                    bestPrefill = min(bestPrefill, (ContinuousClock.now - start).seconds)
                }
                if genTokens > 0 {
                    cache.truncate(to: depth)
                    var token = [prompt[0]]
                    let start = ContinuousClock.now
                    for _ in 0..<genTokens {
                        try token.withUnsafeBufferPointer { try model.forward($0, cache: cache, allLogits: false, logits: out.baseAddress!) }
                        token[0] = Int32(generator.next() % vocab)
                    }
                    bestDecode = min(bestDecode, (ContinuousClock.now - start).seconds)
                }
            }
        }
        let prefill = promptTokens > 0 ? Double(promptTokens) / bestPrefill : 0
        let decode = genTokens > 0 ? Double(genTokens) / bestDecode : 0
        let rss = peakResidentBytes()
        if json {
            print(
                "{\"model\": \(jsonString(options.model)), \"threads\": \(options.threads ?? ProcessInfo.processInfo.activeProcessorCount), "
                    + "\"prompt_tokens\": \(promptTokens), \"gen_tokens\": \(genTokens), \"depth\": \(depth), "
                    + "\"prefill_tokens_per_s\": \(prefill), \"decode_tokens_per_s\": \(decode), "
                    + "\"load_seconds\": \(loadSeconds), \"peak_rss_bytes\": \(rss)}")
        } else {
            print("model    \(options.model)")
            print(String(format: "load     %.3f s", loadSeconds))
            let at = depth > 0 ? " @ d\(depth)" : ""
            if promptTokens > 0 { print(String(format: "prefill  %.2f tokens/s (pp%d%@)", prefill, promptTokens, at)) }
            if genTokens > 0 { print(String(format: "decode   %.2f tokens/s (tg%d%@)", decode, genTokens, at)) }
            print(String(format: "peak RSS %.1f MiB", Double(rss) / 1_048_576))
        }
    }
}

/// The process's peak resident set in bytes (Linux: VmHWM of /proc/self/status; elsewhere getrusage).
func peakResidentBytes() -> Int {
    #if os(Linux)
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kb = Int(line.split(separator: " ").dropFirst().first ?? "")
        {
            return kb * 1024
        }
    #endif
    var usage = rusage()
    #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
    #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
    #endif
}

private func jsonString(_ text: String) -> String {
    let data = try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
    return data.flatMap { String(data: $0, encoding: .utf8) }.map { String($0.dropFirst().dropLast()) } ?? "\"\""
}
