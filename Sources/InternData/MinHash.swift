// MinHash signatures over word n-gram shingles (character n-grams for Chinese: every Han character is a
// token, so n Han characters make a shingle). Unlike the Python tools, which split Chinese on `\W` into
// clause-sized "words" and skip documents shorter than n tokens, a short document gets one shingle of all
// its tokens. Permutations are multiply-add-shift hashes h_i(x) = (a_i * x + b_i) >> 32 of a 32-bit shingle
// hash with random 64-bit a (odd) and b (Dietzfelbinger's 2-universal multiply-add-shift family), which LLVM
// vectorises for AVX2 (the 64x32-bit product is two vpmuludq);
// datasketch uses (a*x + b) mod (2^61 - 1) on SHA-1 hashes, which behaves the same for MinHash but is slower.
// The hot loop is the C kernel in CMinHash (AVX2 chosen at run time); `signatureReference` is its Swift twin.
import CMinHash

/// Computes shingles and MinHash signatures.
public struct MinHasher: Sendable {
    /// How shingles are hashed and permuted.
    public enum Scheme: String, Codable, Sendable, CaseIterable {
        /// datasketch 2.x's default ("affine32"): SHA-1 of the shingle text (first 4 bytes), the MurmurHash3
        /// 32-bit finaliser, then a_k * x + b_k mod 2^32 with a, b drawn by numpy's RandomState(seed), so the
        /// signatures equal datasketch's `MinHash(num_perm, seed).update_batch(shingles)` bit for bit.
        case datasketch
        /// 64-bit token-hash shingles and multiply-add-shift permutations; no SHA-1, no shingle strings.
        case fast
    }

    public let numPerm: Int
    public let ngram: Int
    public let scheme: Scheme
    /// (numPerm) multipliers and offsets of the fast scheme's permutations.
    let a: [UInt64]
    let b: [UInt64]
    /// (numPerm) multipliers and offsets of the datasketch scheme's permutations.
    let a32: [UInt32]
    let b32: [UInt32]

    public init(numPerm: Int = 128, ngram: Int = 5, seed: UInt64 = 1, scheme: Scheme = .fast) {
        precondition(numPerm > 0 && ngram > 0)
        self.numPerm = numPerm
        self.ngram = ngram
        self.scheme = scheme
        var rng = SplitMix64(seed: seed)
        a = (0..<numPerm).map { _ in rng.next() | 1 }
        b = (0..<numPerm).map { _ in rng.next() }
        // numpy: a = RandomState(seed).randint(0, 2**31, num_perm, uint32) * 2 + 1; b = randint(0, 2**32, ...).
        // Masked rejection sampling with a mask equal to the range never rejects, so these are plain draws.
        var mt = MT19937(seed: UInt32(truncatingIfNeeded: seed))
        a32 = (0..<numPerm).map { _ in (mt.next() & 0x7FFF_FFFF) &* 2 &+ 1 }
        b32 = (0..<numPerm).map { _ in mt.next() }
    }

    /// The MurmurHash3 32-bit finaliser (datasketch's `_fmix` for 32-bit values).
    @inline(__always) static func fmix32(_ x: UInt32) -> UInt32 {
        var h = x
        h ^= h >> 16
        h = h &* 2_246_822_507
        h ^= h >> 13
        h = h &* 3_266_489_909
        return h ^ (h >> 16)
    }

    /// datasketch-scheme shingle hashes of `text`: the text is lower-cased (full Unicode), split into the
    /// same tokens as `tokenHashes`, n consecutive tokens joined by one space make a shingle, and each
    /// shingle's UTF-8 is hashed by SHA-1 (first 4 bytes) and the finaliser. Also returns token hashes.
    public func datasketchHashes(_ text: String, tokens: inout [UInt64], into out: inout [UInt32]) {
        out.removeAll(keepingCapacity: true)
        tokens.removeAll(keepingCapacity: true)
        var text = text
        text.withUTF8 { u in
            let n = u.count
            var joined = JoinedTokens(capacity: n)
            defer { joined.deallocate() }
            swap(&joined.tokens, &tokens)
            defer { swap(&joined.tokens, &tokens) }
            let table = Self.asciiWordLower
            let unchanged = Self.unchangedWhenLowercased
            var i = 0
            while i < n {
                let c = u[i]
                if c < 0x80 {
                    i += 1
                    let lower = table[Int(c)]
                    if lower != 0 {
                        joined.wordByte(lower)
                    } else if joined.inWord {
                        joined.endToken()
                    }
                    continue
                }
                // Full Unicode lower-casing (as Python's str.lower, scalar by scalar), skipping the tables
                // for scalars that cannot change.
                let (v, len) = LanguageTagger.decodeScalar(u, i)
                i += len
                // (CJK and Hangul, caseless, skip the lookup.)
                if (v >= 0x3040 && v <= 0x9FFF) || (v >= 0xAC00 && v <= 0xD7AF) || unchanged.contains(v) {
                    joined.scalar(v)
                } else if let s = Unicode.Scalar(v), s.properties.changesWhenLowercased {
                    for x in s.properties.lowercaseMapping.unicodeScalars { joined.scalar(x.value) }
                } else {
                    joined.scalar(v)
                }
            }
            if joined.inWord { joined.endToken() }
            let count = joined.count
            guard count > 0 else { return }
            joined.starts[count] = Int32(joined.end)
            let g = min(ngram, count)
            out.append(contentsOf: repeatElement(0, count: count - g + 1))
            out.withUnsafeMutableBufferPointer { o in
                intern_datasketch_shingle_hashes(joined.bytes, joined.starts, Int32(count), Int32(g), o.baseAddress!)
            }
        }
    }

    /// A document's lower-cased tokens written one after another, each followed by one space, so that every
    /// shingle is one contiguous slice (no copying token by token to join them), with each token's FNV-1a hash.
    /// Lower-casing grows a scalar's UTF-8 by at most half (U+0130 -> "i\u{307}") and each token adds one
    /// space: 3n bytes suffice for n bytes of text; 64 more let the hashing load whole blocks past the end.
    struct JoinedTokens {
        let bytes: UnsafeMutablePointer<UInt8>
        /// starts[k]: where token k begins in bytes.
        let starts: UnsafeMutablePointer<Int32>
        var end = 0
        var count = 0
        var inWord = false
        var hash = TextStats.fnvOffset
        var tokens: [UInt64] = []

        init(capacity n: Int) {
            bytes = .allocate(capacity: 3 * n + 64)
            starts = .allocate(capacity: n + 2)
        }

        func deallocate() {
            bytes.deallocate()
            starts.deallocate()
        }

        @inline(__always) mutating func wordByte(_ b: UInt8) {
            if !inWord {
                starts[count] = Int32(end)
                count += 1
                inWord = true
            }
            bytes[end] = b
            end += 1
            hash = (hash ^ UInt64(b)) &* TextStats.fnvPrime
        }

        @inline(__always) mutating func endToken() {
            bytes[end] = 0x20
            end += 1
            tokens.append(hash)
            hash = TextStats.fnvOffset
            inWord = false
        }

        /// One lower-cased scalar: Han, kana and Hangul are tokens of their own; other word scalars extend the
        /// current token; the rest end it.
        mutating func scalar(_ x: UInt32) {
            let single = x >= 0x3040 && (LanguageTagger.isHan(x) || x <= 0x30FF || (x >= 0xAC00 && x <= 0xD7AF))
            if single && inWord { endToken() }
            guard single || MinHasher.isWordScalar(x) else {
                if inWord { endToken() }
                return
            }
            if x < 0x80 {
                wordByte(UInt8(x))
            } else if x < 0x800 {
                wordByte(UInt8(0xC0 | x >> 6)); wordByte(UInt8(0x80 | x & 0x3F))
            } else if x < 0x10000 {
                wordByte(UInt8(0xE0 | x >> 12)); wordByte(UInt8(0x80 | (x >> 6) & 0x3F)); wordByte(UInt8(0x80 | x & 0x3F))
            } else {
                wordByte(UInt8(0xF0 | x >> 18)); wordByte(UInt8(0x80 | (x >> 12) & 0x3F))
                wordByte(UInt8(0x80 | (x >> 6) & 0x3F)); wordByte(UInt8(0x80 | x & 0x3F))
            }
            if single { endToken() }
        }
    }

    /// Per ASCII byte: its lower-case form when it is a word character (a-z, 0-9 after lower-casing), else 0.
    nonisolated(unsafe) static let asciiWordLower = ByteTable.make(count: 128) { b in
        b >= 0x41 && b <= 0x5A ? b | 0x20 : ((b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) ? b : 0)
    }

    /// datasketch's `sha1_hash32`: the first 4 bytes of the SHA-1 digest as a little-endian integer.
    public static func sha1Hash32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { intern_sha1_hash32($0.baseAddress, $0.count) }
    }

    /// Whether lower-casing leaves a scalar as it is, for most scalars looked up once rather than in the
    /// Unicode tables per character.
    static let unchangedWhenLowercased = ScalarBitmap { !$0.properties.changesWhenLowercased }

    /// The datasketch-scheme signature of 32-bit shingle hashes.
    public func signature32(hashes: [UInt32], into signature: inout [UInt32]) {
        if signature.count != numPerm { signature = [UInt32](repeating: .max, count: numPerm) }
        let m = numPerm
        signature.withUnsafeMutableBufferPointer { sig in
            for k in 0..<m { sig[k] = .max }
            a32.withUnsafeBufferPointer { ap in
                b32.withUnsafeBufferPointer { bp in
                    hashes.withUnsafeBufferPointer { xs in
                        intern_minhash_update32(sig.baseAddress!, ap.baseAddress!, bp.baseAddress!, Int32(m), xs.baseAddress, Int32(xs.count))
                    }
                }
            }
        }
    }

    /// The signature of `text` in this hasher's scheme; nil when the text has no tokens.
    public func schemeSignature(_ text: String) -> [UInt32]? {
        var sig: [UInt32] = []
        switch scheme {
        case .fast:
            return signature(text)
        case .datasketch:
            var tokens: [UInt64] = [], hashes: [UInt32] = []
            datasketchHashes(text, tokens: &tokens, into: &hashes)
            guard !hashes.isEmpty else { return nil }
            signature32(hashes: hashes, into: &sig)
            return sig
        }
    }

    // MARK: Tokens and shingles

    @inline(__always) static func isWordScalar(_ v: UInt32) -> Bool {
        if v < 0x80 {
            return (v >= 0x30 && v <= 0x39) || (v >= 0x61 && v <= 0x7A) || (v >= 0x41 && v <= 0x5A)
        }
        // Punctuation and symbol blocks separate words; other non-ASCII scalars are letters.
        if v < 0xC0 { return v == 0xAA || v == 0xB5 || v == 0xBA }
        if v == 0xD7 || v == 0xF7 { return false }
        if v >= 0x2000 && v <= 0x2BFF { return false }
        if v >= 0x3000 && v <= 0x303F { return false }
        if v >= 0xFE30 && v <= 0xFE4F { return false }
        if v >= 0xFF00 && v <= 0xFF0F { return false }
        if v >= 0xFF1A && v <= 0xFF20 { return false }
        if v >= 0xFF3B && v <= 0xFF40 { return false }
        if v >= 0xFF5B && v <= 0xFF65 { return false }
        if v >= 0xE000 && v <= 0xF8FF { return false }
        if v >= 0x1F000 { return false }
        return true
    }

    /// Token hashes of `text`: maximal runs of word characters (ASCII lower-cased) and single Han, kana or
    /// Hangul characters.
    public static func tokenHashes(_ text: String, into tokens: inout [UInt64]) {
        tokens.removeAll(keepingCapacity: true)
        var text = text
        text.withUTF8 { u in
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            var inWord = false
            var i = 0
            let n = u.count
            let table = Self.asciiWordLower
            while i < n {
                let c = u[i]
                if c < 0x80 {
                    i += 1
                    let lower = table[Int(c)]
                    if lower != 0 {
                        h = (h ^ UInt64(lower)) &* 0x100_0000_01b3
                        inWord = true
                    } else if inWord {
                        tokens.append(h)
                        h = 0xcbf2_9ce4_8422_2325
                        inWord = false
                    }
                    continue
                }
                var v: UInt32
                var len: Int
                if c >= 0xF0, i + 3 < n {
                    v = (UInt32(c & 0x07) << 18) | (UInt32(u[i + 1] & 0x3F) << 12) | (UInt32(u[i + 2] & 0x3F) << 6) | UInt32(u[i + 3] & 0x3F); len = 4
                } else if c >= 0xE0, i + 2 < n {
                    v = (UInt32(c & 0x0F) << 12) | (UInt32(u[i + 1] & 0x3F) << 6) | UInt32(u[i + 2] & 0x3F); len = 3
                } else if c >= 0xC0, i + 1 < n {
                    v = (UInt32(c & 0x1F) << 6) | UInt32(u[i + 1] & 0x3F); len = 2
                } else {
                    v = 0xFFFD; len = 1
                }
                i += len
                let single = LanguageTagger.isHan(v) || (v >= 0x3040 && v <= 0x30FF) || (v >= 0xAC00 && v <= 0xD7AF)
                if single {
                    if inWord { tokens.append(h); h = 0xcbf2_9ce4_8422_2325; inWord = false }
                    tokens.append((0x84222325_cbf29ce4 ^ UInt64(v)) &* 0x9E37_79B9_7F4A_7C15)
                } else if isWordScalar(v) {
                    h = (h ^ UInt64(v)) &* 0x100_0000_01b3
                    inWord = true
                } else if inWord {
                    tokens.append(h)
                    h = 0xcbf2_9ce4_8422_2325
                    inWord = false
                }
            }
            if inWord { tokens.append(h) }
        }
    }

    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 64-bit hashes of the n-gram shingles of `tokens` (one shingle of all tokens when there are fewer than n).
    public func shingles(tokens: [UInt64], into out: inout [UInt64]) {
        out.removeAll(keepingCapacity: true)
        guard !tokens.isEmpty else { return }
        let n = min(ngram, tokens.count)
        tokens.withUnsafeBufferPointer { t in
            for s in 0...(t.count - n) {
                var h: UInt64 = 0x2545_F491_4F6C_DD1D
                for k in s..<(s + n) { h = Self.mix(h ^ t[k]) }
                out.append(h)
            }
        }
    }

    /// The shingle set of `text`, sorted and unique (for exact Jaccard).
    public func shingleSet(_ text: String) -> [UInt64] {
        var tokens: [UInt64] = []
        var sh: [UInt64] = []
        Self.tokenHashes(text, into: &tokens)
        shingles(tokens: tokens, into: &sh)
        sh.sort()
        var unique: [UInt64] = []
        unique.reserveCapacity(sh.count)
        for x in sh where unique.last != x { unique.append(x) }
        return unique
    }

    /// Writes the signature (numPerm minimum values) of a shingle list into `signature` (the C kernel: AVX2
    /// where the CPU has it).
    public func signature(shingles: [UInt64], into signature: inout [UInt32]) {
        if signature.count != numPerm { signature = [UInt32](repeating: .max, count: numPerm) }
        let m = numPerm
        signature.withUnsafeMutableBufferPointer { sig in
            for k in 0..<m { sig[k] = .max }
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    shingles.withUnsafeBufferPointer { xs in
                        intern_minhash_update(sig.baseAddress!, ap.baseAddress!, bp.baseAddress!, Int32(m), xs.baseAddress, Int32(xs.count))
                    }
                }
            }
        }
    }

    /// The same signature by a plain Swift loop: the reference the kernel is tested against.
    public func signatureReference(shingles: [UInt64]) -> [UInt32] {
        var sig = [UInt32](repeating: .max, count: numPerm)
        for x in shingles {
            let x32 = UInt64(UInt32(truncatingIfNeeded: x ^ (x >> 32)))
            for k in 0..<numPerm {
                sig[k] = min(sig[k], UInt32(truncatingIfNeeded: (a[k] &* x32 &+ b[k]) >> 32))
            }
        }
        return sig
    }

    /// Whether the AVX2 kernel is in use.
    public static var usesAVX2: Bool { intern_minhash_uses_avx2() != 0 }

    /// The signature of `text`; nil when the text has no tokens.
    public func signature(_ text: String) -> [UInt32]? {
        var tokens: [UInt64] = []
        var sh: [UInt64] = []
        Self.tokenHashes(text, into: &tokens)
        shingles(tokens: tokens, into: &sh)
        guard !sh.isEmpty else { return nil }
        var sig: [UInt32] = []
        signature(shingles: sh, into: &sig)
        return sig
    }

    /// The share of equal positions of two signatures: an estimate of the Jaccard similarity.
    public static func estimatedJaccard(_ x: [UInt32], _ y: [UInt32]) -> Double {
        var same = 0
        for k in 0..<min(x.count, y.count) where x[k] == y[k] { same += 1 }
        return Double(same) / Double(max(1, min(x.count, y.count)))
    }

    /// Exact Jaccard similarity of two sorted, unique shingle sets.
    public static func jaccard(_ x: [UInt64], _ y: [UInt64]) -> Double {
        if x.isEmpty && y.isEmpty { return 1 }
        var i = 0, j = 0, common = 0
        while i < x.count && j < y.count {
            if x[i] == y[j] { common += 1; i += 1; j += 1 } else if x[i] < y[j] { i += 1 } else { j += 1 }
        }
        return Double(common) / Double(x.count + y.count - common)
    }
}

/// MT19937 (Matsumoto and Nishimura), seeded as numpy's RandomState(seed) seeds it (init_genrand).
struct MT19937 {
    var state = [UInt32](repeating: 0, count: 624)
    var index = 624

    init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    mutating func next() -> UInt32 {
        if index >= 624 {
            for i in 0..<624 {
                let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
                var v = state[(i + 397) % 624] ^ (y >> 1)
                if y & 1 != 0 { v ^= 0x9908_B0DF }
                state[i] = v
            }
            index = 0
        }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }
}

/// SplitMix64 (Steele et al.), a small seeded generator for reproducible permutations and samples.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - LSH parameters

/// Bands × rows of the LSH index.
public struct LSHParameters: Sendable, Equatable, CustomStringConvertible {
    public let bands: Int
    public let rows: Int

    public init(bands: Int, rows: Int) {
        self.bands = bands
        self.rows = rows
    }

    public var description: String { "\(bands) bands x \(rows) rows" }

    /// The bands and rows (b·r ≤ numPerm) that minimise the weighted false-positive and false-negative areas
    /// under the S-curve 1-(1-s^r)^b, as datasketch's `_optimal_param` does (datasketch/lsh.py, with
    /// scipy's quad replaced by composite Simpson integration).
    public static func optimal(
        threshold: Double, numPerm: Int, falsePositiveWeight: Double = 0.5,
        falseNegativeWeight: Double = 0.5
    ) -> LSHParameters {
        var best = LSHParameters(bands: 1, rows: 1)
        var minError = Double.infinity
        for b in 1...numPerm {
            for r in 1...(numPerm / b) {
                let fp = simpson(0, threshold) { s in 1 - pow1(1 - pow1(s, r), b) }
                let fn = simpson(threshold, 1) { s in 1 - (1 - pow1(1 - pow1(s, r), b)) }
                let error = fp * falsePositiveWeight + fn * falseNegativeWeight
                if error < minError {
                    minError = error
                    best = LSHParameters(bands: b, rows: r)
                }
            }
        }
        return best
    }

    @inline(__always) static func pow1(_ x: Double, _ n: Int) -> Double {
        var result = 1.0, base = x, e = n
        while e > 0 {
            if e & 1 == 1 { result *= base }
            base *= base
            e >>= 1
        }
        return result
    }

    static func simpson(_ lo: Double, _ hi: Double, _ f: (Double) -> Double) -> Double {
        let n = 256
        let h = (hi - lo) / Double(n)
        var sum = f(lo) + f(hi)
        for k in 1..<n { sum += f(lo + Double(k) * h) * (k % 2 == 1 ? 4 : 2) }
        return sum * h / 3
    }
}

// MARK: - Union-find

/// Disjoint sets over 0..<count with path halving and union by size; the smallest index is each root.
public struct UnionFind: Sendable {
    var parent: [Int32]

    public init(count: Int) {
        parent = (0..<count).map { Int32($0) }
    }

    public mutating func find(_ x: Int) -> Int {
        var x = Int32(x)
        while parent[Int(x)] != x {
            parent[Int(x)] = parent[Int(parent[Int(x)])]
            x = parent[Int(x)]
        }
        return Int(x)
    }

    /// Joins the sets of x and y; the smaller root index stays the root (so the first document is kept).
    @discardableResult
    public mutating func union(_ x: Int, _ y: Int) -> Bool {
        let rx = find(x), ry = find(y)
        if rx == ry { return false }
        if rx < ry { parent[ry] = Int32(rx) } else { parent[rx] = Int32(ry) }
        return true
    }
}
