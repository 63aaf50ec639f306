import Foundation
import InternCore
import InternEngine
import InternKernels
import InternModels

/// The committed model fixtures (scripts/fixtures/make_model_fixtures.py), found from this file's path.
enum ModelFixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let all = ["gqa1-hd32-f32", "gqa2-hd32-bf16", "gqa4-hd64-bf16-sharded", "dynamic-hd64-f32", "linear-hd32-f16"]
    /// Fixtures whose greedy run stays within max_position_embeddings, so a KV cache (keys rotated when
    /// written) and full recomputation see the same RoPE base.
    static let withoutDynamicGrowth = ["gqa1-hd32-f32", "gqa2-hd32-bf16", "gqa4-hd64-bf16-sharded", "linear-hd32-f16"]

    static func directory(_ name: String) -> URL {
        repositoryRoot.appendingPathComponent("Tests/Fixtures/models/\(name)")
    }

    struct Reference: Decodable {
        let ids: [Int32]
        let logits: [[Float]]
        let greedyPrompt: [Int32]
        let greedyContinuation: [Int32]
        let greedyCachedContinuation: [Int32]
        /// transformers' logits at each greedy step with its KV cache (the prefill's last position first).
        let greedyCachedLogits: [[Float]]
        enum CodingKeys: String, CodingKey {
            case ids, logits
            case greedyPrompt = "greedy_prompt"
            case greedyContinuation = "greedy_continuation"
            case greedyCachedContinuation = "greedy_cached_continuation"
            case greedyCachedLogits = "greedy_cached_logits"
        }
    }

    static func reference(_ name: String) throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: directory(name).appendingPathComponent("reference.json")))
    }
}

/// Logits for every position of `ids` from a fresh cache (f32 unless told: the references keep keys and
/// values exact), in calls of `callSizes` tokens.
func allLogits(_ model: InternLM2Model, _ ids: [Int32], callSizes: [Int]? = nil, cacheType: KVCacheType = .f32) throws -> [[Float]] {
    let cache = SimpleKVCache(model: model, type: cacheType)
    let vocab = model.vocabularySize
    var out = [Float](repeating: .nan, count: ids.count * vocab)
    var done = 0
    for size in callSizes ?? [ids.count] {
        try ids[done..<(done + size)].withUnsafeBufferPointer { part in
            try out.withUnsafeMutableBufferPointer { o in
                try model.forward(part, cache: cache, allLogits: true, logits: o.baseAddress! + done * vocab)
            }
        }
        done += size
    }
    return (0..<ids.count).map { Array(out[($0 * vocab)..<(($0 + 1) * vocab)]) }
}

func maxAbsDiff(_ a: [[Float]], _ b: [[Float]]) -> Float {
    zip(a, b).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
}

/// A temporary directory with `config` as config.json and random weights for `specs` in model.safetensors.
func writeCheckpoint(config: String, specs: [TensorSpec]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("internmodels-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try Data(config.utf8).write(to: dir.appendingPathComponent("config.json"))
    try SafeTensorsWriter.write(to: dir.appendingPathComponent("model.safetensors"), tensors: specs) { _, _ in }
    return dir
}
