// The quality stage (`intern data quality`): a light learned scorer, logistic regression over hashed word
// unigrams and bigrams (Han characters and character bigrams for Chinese), trained by `quality train` on
// positive and negative JSON Lines with plain SGD, in the spirit of the fastText/linear classifiers GPT-3 and
// CCNet-era pipelines used. The language-model perplexity score the issue also asks for needs the engine.
import Foundation

/// A trained quality model: weights over hashed features and a bias.
public struct QualityModel: Sendable, Equatable {
    public static let magic: [UInt8] = Array("IKQM0001".utf8)
    /// log2 of the number of hash buckets.
    public let bits: Int
    public var weights: [Float]
    public var bias: Float

    public init(bits: Int = 18) {
        self.bits = bits
        weights = [Float](repeating: 0, count: 1 << bits)
        bias = 0
    }

    // MARK: Features

    /// Hashed feature indices of `text` with their counts scaled to unit L2 norm, in increasing index order.
    public func features(_ text: String) -> [(Int, Float)] {
        var tokens: [UInt64] = []
        MinHasher.tokenHashes(text, into: &tokens)
        let mask = (1 << bits) - 1
        // Feature indices, counted by sorting (a Dictionary re-hashes every key with SipHash).
        var indices: [Int32] = []
        indices.reserveCapacity(tokens.count * 2 + 4)
        for (k, t) in tokens.enumerated() {
            indices.append(Int32(truncatingIfNeeded: MinHasher.mix(t) & UInt64(mask)))
            if k > 0 {
                indices.append(Int32(truncatingIfNeeded: MinHasher.mix(t &* 31 ^ tokens[k - 1] ^ 0x5bd1e995) & UInt64(mask)))
            }
        }
        // Shape features: the share of lines that end like sentences and the mean line length (in scalars), in
        // buckets, so that menus made of unseen words still look like menus.
        var lines = 0, sentenceEnds = 0, chars = 0
        var text = text
        text.withUTF8 { u in
            var lineChars = 0
            var last: UInt32 = 0
            var i = 0
            func endLine() {
                guard lineChars > 0 else { return }
                lines += 1
                chars += lineChars
                if TextStats.isChinesePunctuationEnd(last) { sentenceEnds += 1 }
            }
            while i < u.count {
                if u[i] == 0x0A {
                    endLine()
                    lineChars = 0
                    i += 1
                    continue
                }
                let (v, len) = LanguageTagger.decodeScalar(u, i)
                i += len
                lineChars += 1
                last = v
            }
            endLine()
        }
        if lines > 0 {
            let endBucket = sentenceEnds * 4 / lines
            let lengthBucket = min(6, Int(log2(Double(chars / lines + 1))))
            for (kind, bucket) in [(1, endBucket), (2, lengthBucket)] {
                let h = MinHasher.mix(0xFEED_0000 &+ UInt64(kind) << 8 &+ UInt64(bucket))
                let index = Int32(truncatingIfNeeded: h & UInt64(mask))
                indices.append(index)
                indices.append(index)
            }
        }
        Self.radixSort(&indices, bits: bits)
        var counts: [(Int, Float)] = []
        var k = 0
        while k < indices.count {
            var e = k + 1
            while e < indices.count && indices[e] == indices[k] { e += 1 }
            counts.append((Int(indices[k]), Float(e - k)))
            k = e
        }
        var norm: Float = 0
        for (_, v) in counts { norm += v * v }
        norm = norm > 0 ? 1 / norm.squareRoot() : 0
        return counts.map { ($0.0, $0.1 * norm) }
    }

    /// Sorts values in 0..<2^bits in increasing order, 11 bits a pass (least significant first): the standard
    /// library's sort is a merge sort, and these two keys a word were most of the stage's time.
    static func radixSort(_ values: inout [Int32], bits: Int) {
        guard values.count > 256 else { return values.sort() }
        let passes = max(1, (bits + 10) / 11)
        let width = (bits + passes - 1) / passes
        let mask = (1 << width) - 1
        var other = [Int32](repeating: 0, count: values.count)
        var counts = [Int](repeating: 0, count: mask + 2)
        values.withUnsafeMutableBufferPointer { a in
            other.withUnsafeMutableBufferPointer { b in
                var from = a, to = b
                for pass in 0..<passes {
                    let shift = pass * width
                    for k in counts.indices { counts[k] = 0 }
                    for x in from { counts[((Int(x) >> shift) & mask) + 1] += 1 }
                    for k in 1..<counts.count { counts[k] += counts[k - 1] }
                    for x in from {
                        let digit = (Int(x) >> shift) & mask
                        to[counts[digit]] = x
                        counts[digit] += 1
                    }
                    swap(&from, &to)
                }
                if passes % 2 == 1 { _ = a.update(fromContentsOf: from) }
            }
        }
    }

    /// The probability that `text` is like the positive training documents.
    public func score(_ text: String) -> Double {
        score(features: features(text))
    }

    func score(features: [(Int, Float)]) -> Double {
        var z = bias
        for (i, v) in features { z += weights[i] * v }
        return 1 / (1 + exp(-Double(z)))
    }

    // MARK: Training

    /// Trains by SGD on logistic loss with L2 regularisation; examples are shuffled with a fixed seed.
    public static func train(
        positives: [String], negatives: [String], bits: Int = 18, epochs: Int = 8,
        learningRate: Float = 0.5, l2: Float = 1e-6, seed: UInt64 = 1
    ) -> QualityModel {
        var model = QualityModel(bits: bits)
        var examples: [([(Int, Float)], Float)] = positives.map { (model.features($0), 1) } + negatives.map { (model.features($0), 0) }
        var rng = SplitMix64(seed: seed)
        for epoch in 0..<epochs {
            examples.shuffle(using: &rng)
            let lr = learningRate / Float(1 + epoch)
            for (x, y) in examples {
                let p = Float(model.score(features: x))
                let g = p - y
                for (i, v) in x { model.weights[i] -= lr * (g * v + l2 * model.weights[i]) }
                model.bias -= lr * g
            }
        }
        return model
    }

    // MARK: Files

    /// Binary file: magic, bits (UInt32 LE), bias (Float32 LE), 2^bits weights (Float32 LE).
    public func write(to path: String) throws(DatasetError) {
        var bytes = Self.magic
        withUnsafeBytes(of: UInt32(bits).littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: bias.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.reserveCapacity(bytes.count + weights.count * 4)
        for w in weights { withUnsafeBytes(of: w.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        let writer = try AtomicWriter(path: path)
        try writer.write(bytes)
        try writer.finish()
    }

    public static func load(path: String) throws(DatasetError) -> QualityModel {
        let bytes = try ByteReader(path: path).readAll()
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else {
            throw .corrupt(file: path, offset: 0, message: "not an InternKit quality model (bad magic)")
        }
        func u32(_ o: Int) -> UInt32 { UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24 }
        let bits = Int(u32(8))
        guard (8...26).contains(bits), bytes.count == 16 + (1 << bits) * 4 else {
            throw .corrupt(file: path, offset: 8, message: "model size does not match its header")
        }
        var model = QualityModel(bits: bits)
        model.bias = Float(bitPattern: u32(12))
        for k in 0..<(1 << bits) { model.weights[k] = Float(bitPattern: u32(16 + 4 * k)) }
        return model
    }
}

/// Settings of the quality stage.
public struct QualityConfig: Codable, Sendable, Equatable {
    /// "classifier" (the hashed n-gram model) or "perplexity" (a language model through the engine).
    public var scorer = "classifier"
    /// Model file: a classifier (.ikqm; empty: Assets/quality/web-quality.ikqm) or, for perplexity, a
    /// language model (.gguf or a checkpoint folder).
    public var model = ""
    /// Classifier: documents scoring below this are removed.
    public var threshold = 0.5
    /// Perplexity: documents above this are removed.
    public var maxPerplexity = 1000.0
    /// Perplexity: tokens scored per document at most (its beginning).
    public var maxTokens = 256
    public init() {}

    public static func load(path: String?) throws(DatasetError) -> QualityConfig {
        try ConfigLoader.load(QualityConfig.self, defaults: QualityConfig(), path: path)
    }
}

/// The quality filter: scores each document, records `meta.quality_score`, removes those below the threshold.
public struct QualityFilter: DocumentFilter {
    public let model: QualityModel
    public let threshold: Double
    public var stageName: String { "quality" }

    public init(model: QualityModel, threshold: Double) {
        self.model = model
        self.threshold = threshold
    }

    public init(config: QualityConfig) throws(DatasetError) {
        let path = config.model.isEmpty ? try Self.defaultModelPath() : config.model
        self.init(model: try QualityModel.load(path: path), threshold: config.threshold)
    }

    public static func defaultModelPath() throws(DatasetError) -> String {
        let lists = try SafetyFilter.defaultWordLists()
        let root = URL(fileURLWithPath: lists[0]).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("Assets/quality/web-quality.ikqm").path
    }

    public func apply(_ document: Document) -> FilterResult {
        let s = model.score(document.text)
        if s < threshold { return .remove(rule: "low_score") }
        var d = document
        d.setMeta("quality_score", raw: String(format: "%.4f", s))
        return .keep(d, counts: [:])
    }
}

/// The quality stage by language-model perplexity, as CCNet filters Common Crawl: documents above
/// `maxPerplexity` are removed, kept ones record `meta.perplexity`. The scorer is given by the caller, since
/// the engine that runs the model is outside this library (`intern data` wires InternEval's
/// `DocumentPerplexityScorer` in).
public struct PerplexityFilter: DocumentFilter {
    /// The perplexity of a text; nil when it is too short to score.
    public let perplexity: @Sendable (String) throws -> Double?
    public let maxPerplexity: Double
    public var stageName: String { "quality" }

    public init(maxPerplexity: Double, perplexity: @escaping @Sendable (String) throws -> Double?) {
        self.maxPerplexity = maxPerplexity
        self.perplexity = perplexity
    }

    public func apply(_ document: Document) -> FilterResult {
        let p: Double?
        do { p = try perplexity(document.text) } catch { return .remove(rule: "scoring_failed") }
        guard let p else { return .remove(rule: "too_short") }
        if !(p <= maxPerplexity) { return .remove(rule: "high_perplexity") }
        var d = document
        d.setMeta("perplexity", raw: String(format: "%.3f", p))
        return .keep(d, counts: [:])
    }
}
