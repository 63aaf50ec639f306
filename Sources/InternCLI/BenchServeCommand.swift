// `intern bench serve`: a load generator for any OpenAI-compatible /v1/completions endpoint, with
// LMDeploy's serving-benchmark metric definitions (lmdeploy/benchmark/profile_restful_api.py): request
// throughput, input and output tokens/s over the run's wall time, TTFT (request sent → first generated
// text), TPOT ((latency − TTFT) / (output tokens − 1)) and ITL (gaps between streamed chunks), with mean,
// P50 and P99. A request counts as successful only if it produced the full requested length; prompts
// are random token ids and `ignore_eos` is sent, as LMDeploy does.
import ArgumentParser
import AsyncHTTPClient
import Foundation
import InternChat
import NIOCore

struct BenchServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Load-test an OpenAI-compatible server (LMDeploy's metrics).")

    @Option(help: "The server's base URL, e.g. http://127.0.0.1:23333 (the /v1 suffix is optional).")
    var url: String

    @Option(help: "Requests in flight at once.")
    var concurrency = 1

    @Option(help: "Requests in all.")
    var requests = 16

    @Option(help: "Prompt length in tokens (random ids).")
    var inputLen = 128

    @Option(help: "Tokens to generate per request.")
    var outputLen = 128

    @Option(help: "The model name to send (default: the first of /v1/models).")
    var model: String?

    @Option(help: "Bearer token, if the server needs one.")
    var apiKey: String?

    @Option(help: "Prompt ids are drawn uniformly from [N/32, N): give the model's vocabulary size (default: Llama 2's, which fits most).")
    var vocabSize = 32000

    @Option(help: "Seed of the random prompts.")
    var seed: UInt64 = 0

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    struct Sample {
        var ok = false
        var promptTokens = 0
        var outputTokens = 0
        var ttft = 0.0
        var latency = 0.0
        var itls: [Double] = []
        var error: String?
    }

    func validate() throws {
        guard concurrency >= 1, requests >= 1, inputLen >= 1, outputLen >= 1 else {
            throw ValidationError("--concurrency, --requests, --input-len and --output-len must be at least 1")
        }
        guard vocabSize >= 64 else { throw ValidationError("--vocab-size must be at least 64") }
    }

    var base: String {
        var u = url
        while u.hasSuffix("/") { u.removeLast() }
        if u.hasSuffix("/v1") { u.removeLast(3) }
        return u
    }

    func run() async throws {
        let client = HTTPClient.shared
        let modelName = try await resolveModel(client)
        var random = BenchRandom(state: seed)
        let low = UInt64(vocabSize / 32)
        let prompts = (0..<requests).map { _ in (0..<inputLen).map { _ in Int32(low + random.next() % (UInt64(vocabSize) - low)) } }
        let start = ContinuousClock.now
        let samples = try await withThrowingTaskGroup(of: [Sample].self) { group in
            for worker in 0..<min(concurrency, requests) {
                group.addTask {
                    var out: [Sample] = []
                    for i in stride(from: worker, to: prompts.count, by: concurrency) {
                        out.append(await one(client, model: modelName, prompt: prompts[i]))
                    }
                    return out
                }
            }
            var all: [Sample] = []
            for try await part in group { all += part }
            return all
        }
        let seconds = Self.seconds(ContinuousClock.now - start)
        report(samples, seconds: seconds, model: modelName)
    }

    func resolveModel(_ client: HTTPClient) async throws -> String {
        if let model { return model }
        var request = HTTPClientRequest(url: base + "/v1/models")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        struct Models: Decodable {
            struct Card: Decodable { let id: String }
            let data: [Card]
        }
        guard let first = try JSONDecoder().decode(Models.self, from: Data(body.readableBytesView)).data.first else {
            throw ValidationError("\(base)/v1/models lists no model; give --model")
        }
        return first.id
    }

    /// One streamed completion request, timed.
    func one(_ client: HTTPClient, model: String, prompt: [Int32]) async -> Sample {
        var sample = Sample(promptTokens: prompt.count)
        let body: [String: Any] = [
            "model": model, "prompt": prompt.map(Int.init), "max_tokens": outputLen, "temperature": 0, "stream": true,
            "ignore_eos": true, "stream_options": ["include_usage": true],
        ]
        var request = HTTPClientRequest(url: base + "/v1/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        // A fresh connection per request: some servers (llama.cpp's) close a kept-alive connection after a
        // stream, which would fail the next request sent on it.
        request.headers.add(name: "Connection", value: "close")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        request.body = .bytes(ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: body)) ?? Data()))
        let sent = ContinuousClock.now
        var last: ContinuousClock.Instant?
        var pending: [UInt8] = []
        do {
            let response = try await client.execute(request, timeout: .seconds(600))
            guard response.status == .ok else {
                sample.error = "HTTP \(response.status.code)"
                return sample
            }
            for try await buffer in response.body {
                pending += buffer.readableBytesView
                while let end = Self.eventEnd(pending) {
                    let event = String(decoding: pending[..<end], as: UTF8.self)
                    pending.removeFirst(end + 2)
                    guard event.hasPrefix("data: ") else { continue }
                    let payload = event.dropFirst(6)
                    if payload == "[DONE]" { continue }
                    guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else { continue }
                    if let usage = object["usage"] as? [String: Any], let n = usage["completion_tokens"] as? Int { sample.outputTokens = n }
                    let texts = (object["choices"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
                    if texts.contains(where: { !$0.isEmpty }) {
                        let now = ContinuousClock.now
                        if let last { sample.itls.append(Self.seconds(now - last)) } else { sample.ttft = Self.seconds(now - sent) }
                        last = now
                    }
                }
            }
        } catch {
            sample.error = "\(error)"
            return sample
        }
        sample.latency = Self.seconds(ContinuousClock.now - sent)
        sample.ok = sample.outputTokens == outputLen
        if !sample.ok && sample.error == nil { sample.error = "generated \(sample.outputTokens) of \(outputLen) tokens" }
        return sample
    }

    static func eventEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for i in 0..<(bytes.count - 1) where bytes[i] == 10 && bytes[i + 1] == 10 { return i }
        return nil
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = p / 100 * Double(sorted.count - 1)
        let lo = Int(rank.rounded(.down)), hi = Int(rank.rounded(.up))
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - Double(lo))
    }

    func report(_ samples: [Sample], seconds: Double, model: String) {
        let ok = samples.filter(\.ok)
        let ttfts = ok.map { $0.ttft * 1000 }
        let tpots = ok.filter { $0.outputTokens > 1 }.map { ($0.latency - $0.ttft) / Double($0.outputTokens - 1) * 1000 }
        let itls = ok.flatMap(\.itls).map { $0 * 1000 }
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        let stats: [(String, Double)] = [
            ("duration_s", seconds), ("successful_requests", Double(ok.count)), ("failed_requests", Double(samples.count - ok.count)),
            ("request_throughput_rps", Double(ok.count) / seconds),
            ("input_throughput_tok_s", Double(ok.reduce(0) { $0 + $1.promptTokens }) / seconds),
            ("output_throughput_tok_s", Double(ok.reduce(0) { $0 + $1.outputTokens }) / seconds),
            ("ttft_mean_ms", mean(ttfts)), ("ttft_p50_ms", Self.percentile(ttfts, 50)), ("ttft_p99_ms", Self.percentile(ttfts, 99)),
            ("tpot_mean_ms", mean(tpots)), ("tpot_p50_ms", Self.percentile(tpots, 50)), ("tpot_p99_ms", Self.percentile(tpots, 99)),
            ("itl_mean_ms", mean(itls)), ("itl_p50_ms", Self.percentile(itls, 50)), ("itl_p99_ms", Self.percentile(itls, 99)),
        ]
        if json {
            var fields = stats.map { "\"\($0.0)\": \(String(format: "%.4f", $0.1))" }
            if let error = samples.compactMap(\.error).first { fields.append("\"first_failure\": \(JSONValue.string(error).pythonJSON)") }
            print(
                "{\"model\": \"\(model)\", \"concurrency\": \(concurrency), \"input_len\": \(inputLen), \"output_len\": \(outputLen), "
                    + fields.joined(separator: ", ") + "}")
        } else {
            print("model \(model), concurrency \(concurrency), \(requests) requests, input \(inputLen), output \(outputLen)")
            for (name, value) in stats { print(name.padding(toLength: 26, withPad: " ", startingAt: 0) + String(format: "%.3f", value)) }
            if let error = samples.compactMap(\.error).first { print("first failure: \(error)") }
        }
    }
}

/// SplitMix64 for the random prompts.
struct BenchRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
