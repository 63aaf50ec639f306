// Sampling as a chain: logit processors (repetition, presence, frequency penalties) change the logits,
// then one sampler picks a token: argmax, or temperature → top-k → top-p → min-p → a draw from a seeded
// generator (mlx-lm `make_sampler` / `make_logits_processors`; llama.cpp's sampler chain). Buffers are
// kept between tokens so the per-token path does not allocate beyond the candidate list's first use.
import Foundation

/// A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64): the same seed gives the
/// same samples on every platform.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// A uniform float in [0, 1).
    public mutating func nextUnit() -> Float { Float(next() >> 40) / Float(1 << 24) }
}

// MARK: - Logit processors

/// What the penalties look at: every token of the sequence and how often each generated token occurred.
public struct TokenHistory: Sendable {
    public private(set) var seen: Set<Int32> = []
    public private(set) var generatedCounts: [Int32: Int] = [:]

    public init(prompt: [Int32] = []) { seen = Set(prompt) }

    public mutating func appendGenerated(_ id: Int32) {
        seen.insert(id)
        generatedCounts[id, default: 0] += 1
    }
}

/// Changes logits in place before sampling.
public protocol LogitProcessor: Sendable {
    func process(_ logits: UnsafeMutableBufferPointer<Float>, history: TokenHistory)
}

/// HF/CTRL repetition penalty over every token seen (prompt and generated): positive logits are divided by
/// `penalty`, negative ones multiplied, so both become less likely.
public struct RepetitionPenalty: LogitProcessor {
    public let penalty: Float
    public init(_ penalty: Float) { self.penalty = penalty }
    public func process(_ logits: UnsafeMutableBufferPointer<Float>, history: TokenHistory) {
        for id in history.seen where Int(id) < logits.count {
            let l = logits[Int(id)]
            logits[Int(id)] = l > 0 ? l / penalty : l * penalty
        }
    }
}

/// OpenAI presence penalty: subtracts `penalty` once from every token generated so far.
public struct PresencePenalty: LogitProcessor {
    public let penalty: Float
    public init(_ penalty: Float) { self.penalty = penalty }
    public func process(_ logits: UnsafeMutableBufferPointer<Float>, history: TokenHistory) {
        for id in history.generatedCounts.keys where Int(id) < logits.count { logits[Int(id)] -= penalty }
    }
}

/// OpenAI frequency penalty: subtracts `penalty` × (times generated) from each token.
public struct FrequencyPenalty: LogitProcessor {
    public let penalty: Float
    public init(_ penalty: Float) { self.penalty = penalty }
    public func process(_ logits: UnsafeMutableBufferPointer<Float>, history: TokenHistory) {
        for (id, n) in history.generatedCounts where Int(id) < logits.count { logits[Int(id)] -= penalty * Float(n) }
    }
}

// MARK: - Sampler

/// Settings of the final sampler. Temperature 0 means greedy (argmax).
public struct SamplingSettings: Sendable, Equatable {
    public var temperature: Float = 0
    /// Keep the k most likely tokens; 0 keeps all.
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probability reaches p; 1 keeps all.
    public var topP: Float = 1
    /// Drop tokens less likely than minP × the top token's probability; 0 keeps all.
    public var minP: Float = 0
    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
    }

    /// Throws `EngineError.invalidParameter` for values outside their ranges.
    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else {
            throw EngineError.invalidParameter(name: "temperature", value: "\(temperature)", reason: "must be ≥ 0")
        }
        guard topK >= 0 else { throw EngineError.invalidParameter(name: "top_k", value: "\(topK)", reason: "must be ≥ 0") }
        guard topP > 0, topP <= 1 else {
            throw EngineError.invalidParameter(name: "top_p", value: "\(topP)", reason: "must be in (0, 1]")
        }
        guard minP >= 0, minP <= 1 else {
            throw EngineError.invalidParameter(name: "min_p", value: "\(minP)", reason: "must be in [0, 1]")
        }
    }
}

/// Picks the next token from logits.
public struct Sampler: Sendable {
    public let settings: SamplingSettings
    private var generator: SeededGenerator
    private var candidates: [(id: Int32, value: Float)] = []
    private var keys: [UInt64] = []
    private var scratch: [UInt64] = []

    public init(settings: SamplingSettings, seed: UInt64) {
        self.settings = settings
        generator = SeededGenerator(seed: seed)
    }

    /// The index of the largest logit (the first on ties).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }

    /// The probabilities the stochastic sampler draws from, as (id, probability) sorted most likely first;
    /// tokens that top-k, top-p or min-p remove are absent. Exposed for tests.
    public mutating func distribution(_ logits: UnsafeBufferPointer<Float>) -> [(id: Int32, value: Float)] {
        let s = settings
        candidates.removeAll(keepingCapacity: true)
        // Tokens more than 30 nats below the top have probability < e^-30 ≈ 1e-13 relative to it; leaving
        // them out before the sort changes no draw in practice and saves sorting a 92k vocabulary.
        var top = -Float.infinity
        for i in 0..<logits.count where logits[i] > top { top = logits[i] }
        let cutoff = top - 30 * s.temperature
        // Sort packed (descending-order key, id) integers with a stable radix sort on the key: a comparison
        // sort of a 92k vocabulary cost ~14 ms per token, more than a small model's forward pass.
        keys.removeAll(keepingCapacity: true)
        for i in 0..<logits.count where logits[i] >= cutoff && logits[i] > -Float.infinity {
            let bits = logits[i].bitPattern
            let ascending = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
            keys.append(UInt64(~ascending) << 32 | UInt64(i))
        }
        Self.radixSortByHighHalf(&keys, scratch: &scratch)
        for key in keys {
            let id = Int(truncatingIfNeeded: key & 0xFFFF_FFFF)
            candidates.append((Int32(id), logits[id] / s.temperature))
        }
        if s.topK > 0 && s.topK < candidates.count { candidates.removeLast(candidates.count - s.topK) }
        guard let first = candidates.first?.value else { return [] }
        var sum: Float = 0
        for i in candidates.indices {
            let e = expf(candidates[i].value - first)
            candidates[i].value = e
            sum += e
        }
        for i in candidates.indices { candidates[i].value /= sum }
        if s.topP < 1 {
            var cumulative: Float = 0
            var keep = candidates.count
            for (i, c) in candidates.enumerated() {
                cumulative += c.value
                if cumulative >= s.topP {
                    keep = i + 1
                    break
                }
            }
            candidates.removeLast(candidates.count - keep)
        }
        if s.minP > 0 {
            let threshold = s.minP * candidates[0].value
            while let last = candidates.last, last.value < threshold { candidates.removeLast() }
        }
        let kept = candidates.reduce(Float(0)) { $0 + $1.value }
        for i in candidates.indices { candidates[i].value /= kept }
        return candidates
    }

    /// Sorts by the upper 32 bits, ascending and stable (LSD radix, four 8-bit digits).
    static func radixSortByHighHalf(_ keys: inout [UInt64], scratch: inout [UInt64]) {
        let n = keys.count
        if scratch.count < n { scratch = [UInt64](repeating: 0, count: n) }
        keys.withUnsafeMutableBufferPointer { a in
            scratch.withUnsafeMutableBufferPointer { b in
                var source = a.baseAddress!, target = b.baseAddress!
                for shift in stride(from: 32, to: 64, by: 8) {
                    var counts = [Int](repeating: 0, count: 257)
                    for i in 0..<n { counts[Int((source[i] >> UInt64(shift)) & 0xFF) + 1] += 1 }
                    for d in 0..<256 { counts[d + 1] += counts[d] }
                    for i in 0..<n {
                        let d = Int((source[i] >> UInt64(shift)) & 0xFF)
                        target[counts[d]] = source[i]
                        counts[d] += 1
                    }
                    swap(&source, &target)
                }
                // Four passes: the result is back in `keys`.
            }
        }
    }

    /// Samples one token.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        if settings.temperature == 0 { return Self.argmax(logits) }
        let choices = distribution(logits)
        guard !choices.isEmpty else { return Self.argmax(logits) }
        let u = generator.nextUnit()
        var cumulative: Float = 0
        for c in choices {
            cumulative += c.value
            if u < cumulative { return c.id }
        }
        return choices[choices.count - 1].id
    }
}
