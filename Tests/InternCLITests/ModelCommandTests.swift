// The `intern generate`, `intern logits` and `intern init` contracts, run on the committed tiny model
// fixtures (a 256-token vocabulary, so a debug build stays fast) with the real tokenizer copied in.
import Foundation
import Testing

@Suite struct ModelCommandTests {
    /// A temporary copy of a model fixture with the repository's tokenizer.model added.
    func fixtureWithTokenizer(_ name: String) throws -> URL {
        let source = CLIRunner.repositoryRoot.appendingPathComponent("Tests/Fixtures/models/\(name)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intern-model-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: source, to: dir)
        try FileManager.default.copyItem(
            at: URL(fileURLWithPath: CLIRunner.tokenizerModel), to: dir.appendingPathComponent("tokenizer.model"))
        return dir
    }

    struct GenerateOutput: Decodable {
        let ids: [Int32]
        let text: String
        let finishReason: String
        let promptTokens: Int
        let completionTokens: Int
        enum CodingKeys: String, CodingKey {
            case ids, text
            case finishReason = "finish_reason"
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
        }
    }

    struct Reference: Decodable {
        let ids: [Int32]
        let logits: [[Float]]
        let greedyPrompt: [Int32]
        let greedyCachedContinuation: [Int32]
        enum CodingKeys: String, CodingKey {
            case ids, logits
            case greedyPrompt = "greedy_prompt"
            case greedyCachedContinuation = "greedy_cached_continuation"
        }
    }

    func reference(_ dir: URL) throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: dir.appendingPathComponent("reference.json")))
    }

    @Test func generateJSONGivesTheGreedyReferenceTokens() throws {
        let dir = try fixtureWithTokenizer("gqa2-hd32-bf16")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ref = try reference(dir)
        let r = try CLIRunner.run([
            "generate", "--model", dir.path, "--prompt-ids", ref.greedyPrompt.map(String.init).joined(separator: ","),
            "--max-tokens", "\(ref.greedyCachedContinuation.count)", "--temperature", "0", "--json",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONDecoder().decode(GenerateOutput.self, from: Data(r.stdout.utf8))
        // The reference greedy run may pass through the stop ids 2 and 92542 (not in a 256 vocabulary: only 2).
        let expected = Array(ref.greedyCachedContinuation.prefix { $0 != 2 })
        #expect(out.ids == expected)
        #expect(out.promptTokens == ref.greedyPrompt.count)
        #expect(out.completionTokens == expected.count)
        #expect(out.finishReason == (expected.count == ref.greedyCachedContinuation.count ? "length" : "stop"))
        #expect(r.stdout.hasSuffix("}\n") && r.stdout.components(separatedBy: "\n").count == 2)
    }

    @Test func generateStreamsTextAndSamplingIsReproducible() throws {
        let dir = try fixtureWithTokenizer("gqa1-hd32-f32")
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["generate", "--model", dir.path, "--prompt-ids", "1,100,200", "--max-tokens", "6", "--seed", "7", "--temperature", "1"]
        let a = try CLIRunner.run(args), b = try CLIRunner.run(args)
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout == b.stdout)
        #expect(a.stderr.contains("generated"))
        let json = try CLIRunner.run(args + ["--json"])
        let out = try JSONDecoder().decode(GenerateOutput.self, from: Data(json.stdout.utf8))
        #expect(a.stdout == out.text + "\n")
    }

    /// `intern logits` as .npy against transformers: exact prefill (`--activations f32`) against reference.json
    /// within 1e-4, and where the CPU has AVX512-BF16 the bf16-rounded prefill within that rounding's reach.
    @Test func logitsWritesTheReferenceLogitsAsNpy() throws {
        let dir = try fixtureWithTokenizer("gqa4-hd64-bf16-sharded")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ref = try reference(dir)
        // transformers keeps keys and values in f32; so do these runs (the default cache is f16).
        let (exactRun, exact) = try logits(dir, ids: ref.ids, ["--activations", "f32", "--kv-cache-type", "f32"])
        #expect(exactRun.status == 0, "\(exactRun.stderr)")
        #expect(exactRun.header.contains("'descr': '<f4'") && exactRun.header.contains("'shape': (\(ref.ids.count), 256)"))
        #expect(exact.count == ref.ids.count * 256)
        let diff = zip(exact, ref.logits.flatMap { $0 }).map { abs($0 - $1) }.max() ?? .infinity
        #expect(diff < 1e-4, "max |Δlogit| = \(diff)")

        let (roundedRun, rounded) = try logits(dir, ids: ref.ids, ["--activations", "bf16", "--kv-cache-type", "f32"])
        if roundedRun.status == 0 {
            #expect(rounded.count == ref.ids.count * 256)
            let diff = zip(rounded, ref.logits.flatMap { $0 }).map { abs($0 - $1) }.max() ?? .infinity
            #expect(diff > 1e-4 && diff < 0.03, "bf16 activations: max |Δlogit| = \(diff)")
        }
    }

    /// Runs `intern logits` for `ids` with `extra` options; the .npy header and the values (empty on failure).
    func logits(_ dir: URL, ids: [Int32], _ extra: [String]) throws -> (run: (status: Int32, stderr: String, header: String), values: [Float]) {
        let npy = dir.appendingPathComponent("logits-\(UUID().uuidString).npy")
        let r = try CLIRunner.run(["logits", "--model", dir.path, "--ids", ids.map(String.init).joined(separator: ","), "--out", npy.path] + extra)
        guard r.status == 0, let data = try? Data(contentsOf: npy) else { return ((r.status, r.stderr, ""), []) }
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        let values = data[(10 + headerLength)...].withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        return ((r.status, r.stderr, header), values)
    }

    /// `--activations`: on a CPU with AVX512-BF16 the default prefill of bf16 weights rounds the activations
    /// to bf16 (the same bits as `--activations bf16`), which matches transformers with that rounding emulated
    /// (reference-bf16-activations.json) where it does not match the exact reference, and `f32` gives the exact
    /// arithmetic; elsewhere the default is exact (the bits of `f32`) and bf16 is refused with the reason. An
    /// unknown name is refused with the choices.
    @Test func activationsOptionPicksTheArithmetic() throws {
        let dir = try fixtureWithTokenizer("gqa2-hd32-bf16")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ids = try reference(dir).ids
        let (defaultRun, byDefault) = try logits(dir, ids: ids, [])
        let (f32Run, f32) = try logits(dir, ids: ids, ["--activations", "f32"])
        #expect(defaultRun.status == 0 && f32Run.status == 0, "\(defaultRun.stderr) \(f32Run.stderr)")
        #expect(!byDefault.isEmpty && byDefault.count == f32.count)
        let (bf16Run, bf16) = try logits(dir, ids: ids, ["--activations", "bf16"])
        if bf16Run.status == 0 {
            #expect(byDefault.map(\.bitPattern) == bf16.map(\.bitPattern))
            let diff = zip(bf16, f32).map { abs($0 - $1) }.max() ?? .infinity
            #expect(bf16.count == f32.count && diff > 1e-3 && diff < 0.03, "max |Δlogit| = \(diff)")
            struct Emulated: Decodable { let logits: [[Float]] }
            let file = dir.appendingPathComponent("reference-bf16-activations.json")
            let emulated = try JSONDecoder().decode(Emulated.self, from: Data(contentsOf: file)).logits.flatMap { $0 }
            // The default arithmetic; transformers keeps keys and values in f32.
            let (_, withF32Cache) = try logits(dir, ids: ids, ["--kv-cache-type", "f32"])
            let fromEmulated = zip(withF32Cache, emulated).map { abs($0 - $1) }.max() ?? .infinity
            #expect(withF32Cache.count == emulated.count && fromEmulated < 1e-4, "max |Δlogit| from the emulation = \(fromEmulated)")
        } else {
            #expect(byDefault.map(\.bitPattern) == f32.map(\.bitPattern))
            #expect(bf16Run.stderr.contains("--activations bf16: needs a build for a CPU with AVX512-BF16"), "\(bf16Run.stderr)")
        }
        let unknown = try CLIRunner.run(["logits", "--model", dir.path, "--ids", "1,2", "--out", "/dev/null", "--activations", "fp8"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("unknown --activations 'fp8'; choose f32, bf16, int8, int16"), "\(unknown.stderr)")
    }

    @Test func benchMeasuresAtADepthAndRefusesRunsBeyondTheContext() throws {
        let dir = try fixtureWithTokenizer("gqa1-hd32-f32")  // at most 64 positions
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLIRunner.run(["bench", "--model", dir.path, "--prompt-tokens", "8", "--gen-tokens", "4", "--depth", "40", "--threads", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["depth"] as? Int == 40 && json?["prompt_tokens"] as? Int == 8 && json?["gen_tokens"] as? Int == 4)
        #expect((json?["prefill_tokens_per_s"] as? Double ?? 0) > 0 && (json?["decode_tokens_per_s"] as? Double ?? 0) > 0)
        let tooDeep = try CLIRunner.run(["bench", "--model", dir.path, "--prompt-tokens", "8", "--gen-tokens", "4", "--depth", "60"])
        #expect(tooDeep.status != 0)
        #expect(tooDeep.stderr.contains("--depth 60 plus 8 tokens is 68 positions, beyond the model's maximum of 64"), "\(tooDeep.stderr)")
    }

    @Test func unknownKVCacheTypeIsRefusedWithTheChoices() throws {
        let dir = try fixtureWithTokenizer("gqa1-hd32-f32")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLIRunner.run(["logits", "--model", dir.path, "--ids", "1,2", "--out", "/dev/null", "--kv-cache-type", "q4"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("unknown --kv-cache-type 'q4'; choose f32, f16, q8_0"), "\(r.stderr)")
    }

    @Test func badCheckpointFailsWithTheTensorNamed() throws {
        let dir = try fixtureWithTokenizer("gqa1-hd32-f32")
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: weights)
        try data.prefix(data.count - 10).write(to: weights)
        let r = try CLIRunner.run(["logits", "--model", dir.path, "--ids", "1,2", "--out", dir.appendingPathComponent("x.npy").path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("model.safetensors") && r.stderr.contains("truncated"), "stderr: \(r.stderr)")
        let fixture = try fixtureWithTokenizer("gqa1-hd32-f32")
        defer { try? FileManager.default.removeItem(at: fixture) }
        let outside = try CLIRunner.run(["generate", "--model", fixture.path, "--prompt", "Hello", "--max-tokens", "1"])
        #expect(outside.status != 0)
        #expect(outside.stderr.contains("token id 9843 is outside the vocabulary (0..<256)"), "stderr: \(outside.stderr)")
    }

    @Test func initWritesALoadableCheckpointInTheHFLayout() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intern-init-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLIRunner.run(["init", "--preset", "tiny", "--out", dir.path, "--dtype", "f32", "--seed", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files == ["config.json", "model.safetensors", "tokenizer.model"])
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(config?["model_type"] as? String == "internlm2")
        #expect(config?["vocab_size"] as? Int == 92544)
        let logits = try CLIRunner.run(["logits", "--model", dir.path, "--ids", "1,2", "--out", dir.appendingPathComponent("l.npy").path])
        #expect(logits.status == 0, "\(logits.stderr)")
        // The same seed writes the same bytes.
        let again = dir.appendingPathComponent("again")
        _ = try CLIRunner.run(["init", "--preset", "tiny", "--out", again.path, "--dtype", "f32", "--seed", "3"])
        #expect(
            try Data(contentsOf: again.appendingPathComponent("model.safetensors"))
                == Data(contentsOf: dir.appendingPathComponent("model.safetensors")))
    }
}

extension ModelCommandTests {
    @Test func chatWrapsThePromptInTheTemplate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intern-chat-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try CLIRunner.run(["init", "--preset", "tiny", "--out", dir.path])
        let r = try CLIRunner.run(["generate", "--model", dir.path, "--chat", "--prompt", "hi", "--max-tokens", "1", "--temperature", "0", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        // <s><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n is 11 ids (see templateShowsPromptAndIDs).
        let out = try JSONDecoder().decode(GenerateOutput.self, from: Data(r.stdout.utf8))
        #expect(out.promptTokens == 11)
        let bad = try CLIRunner.run(["generate", "--model", dir.path, "--system", "x", "--prompt", "hi"])
        #expect(bad.status != 0 && bad.stderr.contains("--system needs --chat"))
    }
}

extension ModelCommandTests {
    @Test func quantizeWritesALoadableCheckpointCloseToTheOriginal() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intern-quantize-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = dir.appendingPathComponent("base"), text = dir.appendingPathComponent("text.txt")
        #expect(try CLIRunner.run(["init", "--preset", "tiny", "--out", base.path, "--dtype", "f32"]).status == 0)
        try String(repeating: "The quick brown fox jumps over the lazy dog. 今天天气很好。 def f(x): return x + 1\n", count: 2).write(
            to: text, atomically: true, encoding: .utf8)
        for (type, bytesPerBlock) in [("q8_0", 34), ("q4_0", 18)] {
            let out = dir.appendingPathComponent(type)
            let r = try CLIRunner.run(["quantize", "--model", base.path, "--out", out.path, "--type", type])
            #expect(r.status == 0, "\(r.stderr)")
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any]
            #expect((config?["quantization"] as? [String: Any])?["type"] as? String == type)
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("tokenizer.model").path))
            // tiny: hidden 64, so each quantized row of the embedding is 2 blocks.
            let header = try Data(contentsOf: out.appendingPathComponent("model.safetensors")).prefix(20_000)
            #expect(String(decoding: header, as: UTF8.self).contains("\"dtype\":\"U8\",\"shape\":[92544,\(2 * bytesPerBlock)]"))
            let p = try CLIRunner.run(["perplexity", "--model", out.path, "--file", text.path, "--reference", base.path, "--context", "16"])
            #expect(p.status == 0, "\(p.stderr)")
            #expect(p.stdout.lowercased().contains("kl"), "\(p.stdout)")
        }
        let again = try CLIRunner.run([
            "quantize", "--model", dir.appendingPathComponent("q8_0").path, "--out", dir.appendingPathComponent("x").path, "--type", "q4_0",
        ])
        #expect(again.status != 0 && again.stderr.contains("already quantized"))
    }
}
