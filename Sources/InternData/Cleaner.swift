// The heuristic rule stage (`intern data clean`): Gopher's quality and repetition rules (Rae et al. 2021,
// table A1), C4's boilerplate and lorem-ipsum rules, FineWeb's line-punctuation, short-line and list
// rules, a non-printable-character rule, and Chinese handling (character counts instead of whitespace
// words, `。！？` sentence ends, Chinese stop words). Thresholds follow datatrove's defaults
// (huggingface/datatrove `GopherQualityFilter`, `GopherRepetitionFilter`, `FineWebQualityFilter`).

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Thresholds of the cleaning rules; every key can be set in a JSON file (snake_case).
public struct CleanConfig: Codable, Sendable, Equatable {
    // Length (words for alphabetic scripts, Han characters plus words for Chinese).
    public var minWords = 50
    public var maxWords = 100_000
    public var zhMinChars = 100
    public var zhMaxChars = 200_000
    // Gopher quality.
    public var minMeanWordLength = 3.0
    public var maxMeanWordLength = 10.0
    public var maxSymbolWordRatio = 0.1
    public var maxBulletLinesRatio = 0.9
    public var maxEllipsisLinesRatio = 0.3
    public var minAlphaWordsRatio = 0.8
    /// At least this many stop-word occurrences (Gopher: 2 of the, be, to, of, and, that, have, with).
    public var minStopWords = 2
    /// Chinese: at least this many occurrences of 的, 了, 是, 在, 和, 有, 也, 就, 不, 都, 这, 我, 他, 与, 对.
    public var zhMinStopWords = 3
    // Gopher repetition.
    public var maxDupLineFraction = 0.3
    public var maxDupParagraphFraction = 0.3
    public var maxDupLineCharFraction = 0.2
    public var maxDupParagraphCharFraction = 0.2
    /// For n = 2, 3, 4: the most frequent n-gram's share of characters.
    public var topNgramMaxFraction = [0.2, 0.18, 0.16]
    /// For n = 5 ... 10: the share of characters in repeated n-grams.
    public var dupNgramMaxFraction = [0.15, 0.14, 0.13, 0.12, 0.11, 0.10]
    /// Chinese tokens are single characters, so the n of the n-gram rules is multiplied by this.
    public var zhNgramScale = 2
    // FineWeb.
    public var minLinePunctuationRatio = 0.12
    public var maxShortLineRatio = 0.67
    public var shortLineChars = 30
    public var zhShortLineChars = 10
    /// Lines per word (FineWeb's list-document rule: newlines / words).
    public var maxLinesPerWord = 0.3
    // Other.
    public var maxNonPrintableRatio = 0.01
    public var removeLoremIpsum = true
    /// Remove lines that are boilerplate (cookie banners, "enable JavaScript", copyright, legal links).
    public var dropBoilerplateLines = true
    /// Lower-cased phrases; a line of at most `boilerplateMaxLineChars` characters holding one is dropped.
    public var boilerplatePhrases = [
        "cookie", "javascript", "privacy policy", "terms of use", "terms of service", "terms and conditions",
        "all rights reserved", "sign up for our newsletter", "subscribe to our newsletter", "log in", "sign in",
        "datenschutz", "impressum", "mentions légales", "版权所有", "隐私政策", "免责声明", "联系我们", "关于我们",
        "用户协议", "icp备", "京icp", "增值电信业务", "copyright ©", "© copyright",
    ]
    public var boilerplateMaxLineChars = 200
    /// C4's line filter for WET-like pages: keep only lines that end in terminal punctuation and hold at least
    /// `c4MinLineWords` words (Chinese: `c4ZhMinLineChars` Han characters); this strips menus and footers.
    public var c4LineFilter = true
    public var c4MinLineWords = 5
    public var c4ZhMinLineChars = 10
    /// Apply the text-normalisation step (NFC, whitespace, stray entities) before the rules.
    public var normalize = false

    public init() {}

    /// Loads a configuration from a JSON file; missing keys keep their defaults.
    public static func load(path: String?) throws(DatasetError) -> CleanConfig {
        try ConfigLoader.load(CleanConfig.self, defaults: CleanConfig(), path: path)
    }
}

/// What the cleaning stage decided for one document.
public enum CleanDecision: Sendable, Equatable {
    /// Kept, possibly with boilerplate lines (`droppedLines`) and non-sentence lines (`filteredLines`) removed.
    case keep(Document, droppedLines: Int, filteredLines: Int)
    /// Removed by the named rule.
    case remove(rule: String)
}

/// Applies the rules of a `CleanConfig`.
public struct Cleaner: Sendable {
    public let config: CleanConfig
    let stopWordHashes: [String: Set<UInt64>]
    let zhStopWords: Set<UInt64>
    let stopWordTables: [String: LanguageTagger.StopWordTable]
    let zhStopWordTable: LanguageTagger.StopWordTable
    static let noStopWords = LanguageTagger.StopWordTable([])
    let phrases: [[UInt8]]
    /// A bit per hashed four-byte head of the boilerplate phrases (nil when a phrase is shorter than four bytes).
    let phrasePrefixes: [UInt64]?
    /// Each phrase's first four bytes as one (little-endian) integer.
    let phraseHeads: [UInt32]

    /// Rule names in evaluation order, for reports.
    public static let ruleNames = [
        "non_printable", "lorem_ipsum", "empty", "min_words", "max_words", "mean_word_length", "symbol_ratio",
        "bullet_lines", "ellipsis_lines", "alpha_words", "stop_words", "dup_lines", "dup_paragraphs",
        "dup_line_chars", "dup_paragraph_chars", "top_ngram", "dup_ngram", "line_punctuation", "short_lines",
        "list_lines",
    ]

    static let stopWords: [String: [String]] = [
        "en": ["the", "be", "to", "of", "and", "that", "have", "with"],
        "de": ["der", "die", "das", "und", "ist", "zu", "mit", "nicht", "den", "ein"],
        "fr": ["le", "la", "les", "et", "de", "est", "que", "avec", "des", "un"],
    ]
    static let chineseStopWords: [Character] = ["的", "了", "是", "在", "和", "有", "也", "就", "不", "都", "这", "我", "他", "与", "对"]

    public init(config: CleanConfig = CleanConfig()) {
        self.config = config
        stopWordHashes = Self.stopWords.mapValues { Set($0.map(TextStats.wordHash)) }
        zhStopWords = Set(
            Self.chineseStopWords.map { c in
                (TextStats.fnvOffset ^ UInt64(c.unicodeScalars.first!.value)) &* TextStats.fnvPrime
            })
        phrases = config.boilerplatePhrases.map { Array($0.lowercased().utf8) }
        phrasePrefixes = Self.prefixBits(phrases)
        phraseHeads = phrases.map { $0.count >= 4 ? Self.head($0) : 0 }
        stopWordTables = stopWordHashes.mapValues { LanguageTagger.StopWordTable([$0]) }
        zhStopWordTable = LanguageTagger.StopWordTable([zhStopWords])
    }

    /// Runs the rules on `document`; the first failing rule removes it.
    public func clean(_ document: Document) -> CleanDecision {
        var doc = document
        if config.normalize { doc.text = TextNormalizer.normalize(doc.text) }
        if doc.lang.isEmpty { doc.lang = LanguageTagger.tag(doc.text) }
        var dropped = 0
        var filtered = 0
        if config.removeLoremIpsum && containsLoremIpsum(doc.text) { return .remove(rule: "lorem_ipsum") }
        if config.dropBoilerplateLines && config.c4LineFilter && doc.lang != "code" {
            // Both line passes in one, building one string (the same text and counts as the two in turn).
            let (text, d, f) = dropBoilerplateAndFilter(doc.text, chinese: doc.lang == "zh")
            doc.text = text
            dropped = d
            filtered = f
        } else if config.dropBoilerplateLines {
            let (text, n) = dropBoilerplate(doc.text)
            doc.text = text
            dropped = n
        }
        if config.c4LineFilter && doc.lang != "code" && !config.dropBoilerplateLines {
            let (text, n) = sentenceLines(doc.text, chinese: doc.lang == "zh")
            doc.text = text
            filtered = n
        }
        if let rule = failingRule(doc) { return .remove(rule: rule) }
        return .keep(doc, droppedLines: dropped, filteredLines: filtered)
    }

    /// C4's line filter: keeps lines that end like a sentence and are long enough. Works on UTF-8 bytes.
    func sentenceLines(_ text: String, chinese: Bool) -> (String, Int) {
        var text = text
        return text.withUTF8 { u -> (String, Int) in
            var out: [UInt8] = []
            out.reserveCapacity(u.count)
            var removed = 0
            forEachLine(u) { lo, hi in
                let (s, e, keep) = sentenceLine(u, lo, hi, chinese: chinese)
                guard s < e else { return }
                if keep {
                    if !out.isEmpty { out.append(0x0A) }
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: u[s..<e]))
                } else {
                    removed += 1
                }
            }
            return (String(decoding: out, as: UTF8.self), removed)
        }
    }

    /// C4's test of one line u[lo..<hi]: the line trimmed of spaces, tabs and CRs (empty: neither kept nor
    /// counted) and whether it is kept.
    @inline(__always) func sentenceLine(_ u: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, chinese: Bool) -> (Int, Int, Bool) {
        var s = lo, e = hi
        while s < e, u[s] == 0x20 || u[s] == 0x09 || u[s] == 0x0D { s += 1 }
        while e > s, u[e - 1] == 0x20 || u[e - 1] == 0x09 || u[e - 1] == 0x0D { e -= 1 }
        guard s < e else { return (s, e, false) }
        let last = Self.lastScalar(u, s, e)
        var keep: Bool
        if chinese {
            keep = TextStats.isChinesePunctuationEnd(last)
            if keep {
                var han = 0
                Self.forEachScalar(u, s, e) { v in
                    if LanguageTagger.isHan(v) { han += 1 }
                    return han < config.c4ZhMinLineChars
                }
                keep = han >= config.c4ZhMinLineChars
            }
        } else {
            keep = last == 0x2E || last == 0x21 || last == 0x3F || last == 0x22 || last == 0x201D
            if keep {
                // Words are counted only until there are enough (most kept lines are long).
                let needed = config.c4MinLineWords
                var words = 0
                var inWord = false
                var k = s
                while k < e && words < needed {
                    let space = u[k] == 0x20 || u[k] == 0x09
                    if !space && !inWord { words += 1 }
                    inWord = !space
                    k += 1
                }
                keep = words >= needed
            }
        }
        return (s, e, keep)
    }

    /// `sentenceLines(dropBoilerplate(text).0, chinese:)` in one pass over the lines and one string: the
    /// text, the boilerplate lines dropped and the lines the C4 filter removed. (The boilerplate pass joins
    /// the lines it keeps with newlines, so the C4 pass sees exactly those lines.)
    func dropBoilerplateAndFilter(_ text: String, chinese: Bool) -> (String, Int, Int) {
        var text = text
        var scratch: [UInt8] = []
        return text.withUTF8 { u -> (String, Int, Int) in
            var out: [UInt8] = []
            out.reserveCapacity(u.count)
            var dropped = 0, removed = 0
            forEachLine(u) { lo, hi in
                if isBoilerplateLine(u, lo, hi, scratch: &scratch) {
                    dropped += 1
                    return
                }
                let (s, e, keep) = sentenceLine(u, lo, hi, chinese: chinese)
                guard s < e else { return }
                if keep {
                    if !out.isEmpty { out.append(0x0A) }
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: u[s..<e]))
                } else {
                    removed += 1
                }
            }
            return (String(decoding: out, as: UTF8.self), dropped, removed)
        }
    }

    /// Whether line u[lo..<hi] is short enough and holds a boilerplate phrase.
    @inline(__always) func isBoilerplateLine(_ u: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, scratch: inout [UInt8]) -> Bool {
        guard hi - lo <= config.boilerplateMaxLineChars * 4 else { return false }
        // A line of at most that many bytes has at most that many characters; only longer ones are counted.
        if hi - lo > config.boilerplateMaxLineChars {
            var chars = 0
            for k in lo..<hi where (u[k] & 0xC0) != 0x80 { chars += 1 }
            guard chars <= config.boilerplateMaxLineChars else { return false }
        }
        return isBoilerplate(UnsafeBufferPointer(rebasing: u[lo..<hi]), scratch: &scratch)
    }

    /// Calls `body(lo, hi)` for every line (without its newline) of `u`.
    @inline(__always) func forEachLine(_ u: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        var start = 0
        let n = u.count
        while start <= n {
            var end = start
            if let base = u.baseAddress, start < n, let p = memchr(base + start, 0x0A, n - start) {
                end = base.distance(to: p.assumingMemoryBound(to: UInt8.self))
            } else {
                end = n
            }
            body(start, end)
            start = end + 1
        }
    }

    static func lastScalar(_ u: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> UInt32 {
        var k = e - 1
        while k > s && (u[k] & 0xC0) == 0x80 { k -= 1 }
        var v: UInt32 = 0
        forEachScalar(u, k, e) { x in
            v = x; return false
        }
        return v
    }

    /// Decodes scalars of u[s..<e] until `body` returns false.
    static func forEachScalar(_ u: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, _ body: (UInt32) -> Bool) {
        var i = s
        while i < e {
            let c = u[i]
            var v = UInt32(c)
            var len = 1
            if c >= 0xF0, i + 3 < e {
                v = (UInt32(c & 0x07) << 18) | (UInt32(u[i + 1] & 0x3F) << 12) | (UInt32(u[i + 2] & 0x3F) << 6) | UInt32(u[i + 3] & 0x3F); len = 4
            } else if c >= 0xE0, i + 2 < e {
                v = (UInt32(c & 0x0F) << 12) | (UInt32(u[i + 1] & 0x3F) << 6) | UInt32(u[i + 2] & 0x3F); len = 3
            } else if c >= 0xC0, i + 1 < e {
                v = (UInt32(c & 0x1F) << 6) | UInt32(u[i + 1] & 0x3F); len = 2
            }
            i += len
            if !body(v) { return }
        }
    }

    /// The name of the first rule `doc` fails, or nil.
    public func failingRule(_ doc: Document) -> String? {
        let lang = doc.lang.isEmpty ? LanguageTagger.tag(doc.text) : doc.lang
        let chinese = lang == "zh"
        let stats = TextStats(doc.text, chinese: chinese, stopWords: chinese ? zhStopWordTable : stopWordTables[lang] ?? Self.noStopWords)
        let c = config
        if stats.chars == 0 { return "empty" }
        if Double(stats.nonPrintable) > c.maxNonPrintableRatio * Double(stats.chars) { return "non_printable" }
        if lang == "code" { return nil }  // Prose rules do not apply to code.
        if chinese {
            let size = stats.hanChars
            if size < c.zhMinChars { return "min_words" }
            if size > c.zhMaxChars { return "max_words" }
        } else {
            if stats.words < c.minWords { return "min_words" }
            if stats.words > c.maxWords { return "max_words" }
            let mean = Double(stats.wordChars) / Double(max(1, stats.words))
            if mean < c.minMeanWordLength || mean > c.maxMeanWordLength { return "mean_word_length" }
        }
        let words = max(1, stats.words)
        if Double(stats.symbolTokens) > c.maxSymbolWordRatio * Double(words) { return "symbol_ratio" }
        let lines = stats.lines
        let nLines = max(1, lines.count)
        if Double(lines.filter(\.isBullet).count) > c.maxBulletLinesRatio * Double(nLines) { return "bullet_lines" }
        if Double(lines.filter(\.endsWithEllipsis).count) > c.maxEllipsisLinesRatio * Double(nLines) { return "ellipsis_lines" }
        if !chinese && Double(stats.alphaWords) < c.minAlphaWordsRatio * Double(words) { return "alpha_words" }
        if chinese {
            if stats.stopWordHits < c.zhMinStopWords { return "stop_words" }
        } else if stopWordHashes[lang] != nil && stats.stopWordHits < c.minStopWords {
            return "stop_words"
        }
        let dupLines = stats.duplicateLines()
        let dupParagraphs = stats.duplicateParagraphs()
        if dupLines.fraction > c.maxDupLineFraction { return "dup_lines" }
        if dupParagraphs.fraction > c.maxDupParagraphFraction { return "dup_paragraphs" }
        if dupLines.charFraction > c.maxDupLineCharFraction { return "dup_line_chars" }
        if dupParagraphs.charFraction > c.maxDupParagraphCharFraction { return "dup_paragraph_chars" }
        let scale = chinese ? max(1, c.zhNgramScale) : 1
        var ngrams = NgramRepetition(stats)
        for (k, limit) in c.topNgramMaxFraction.enumerated() {
            if ngrams.topCharFraction((k + 2) * scale) > limit { return "top_ngram" }
        }
        for (k, limit) in c.dupNgramMaxFraction.enumerated() {
            if ngrams.duplicateCharFraction((k + 5) * scale) > limit { return "dup_ngram" }
        }
        if Double(lines.filter(\.endsWithPunctuation).count) < c.minLinePunctuationRatio * Double(nLines) { return "line_punctuation" }
        let shortLimit = chinese ? c.zhShortLineChars : c.shortLineChars
        if Double(lines.filter { $0.chars <= shortLimit }.count) > c.maxShortLineRatio * Double(nLines) { return "short_lines" }
        if !chinese && Double(lines.count) > c.maxLinesPerWord * Double(words) { return "list_lines" }
        return nil
    }

    func containsLoremIpsum(_ text: String) -> Bool {
        var t = text
        return t.withUTF8 { u in
            let needle = Array("lorem ipsum".utf8)
            let n = u.count
            guard n >= needle.count, let base = u.baseAddress else { return false }
            // Matches at start s (case-insensitive ASCII), compared byte by byte as before.
            func matches(_ s: Int) -> Bool {
                guard (u[s] | 0x20) == 0x6C else { return false }
                for k in 1..<needle.count where (u[s + k] >= 0x41 && u[s + k] <= 0x5A ? u[s + k] | 0x20 : u[s + k]) != needle[k] { return false }
                return true
            }
            // Anchored on its "ps" (7 bytes in), far rarer in prose than an 'l': eight candidate positions at a
            // time are ruled out by SWAR (a zero byte of ((v | 0x20) ^ 'p') | ((w | 0x20) ^ 's'), w being the
            // bytes one further on).
            let ones: UInt64 = 0x0101_0101_0101_0101
            var p = 7
            while p + 4 <= n {
                if p + 9 <= n {
                    let v = UInt64(littleEndian: UnsafeRawPointer(base + p).loadUnaligned(as: UInt64.self))
                    let w = UInt64(littleEndian: UnsafeRawPointer(base + p + 1).loadUnaligned(as: UInt64.self))
                    let x = ((v | (ones &* 0x20)) ^ (ones &* 0x70)) | ((w | (ones &* 0x20)) ^ (ones &* 0x73))
                    if (x &- ones) & ~x & (ones &* 0x80) == 0 {
                        p += 8
                        continue
                    }
                    let end = p + 8
                    while p < end && p + 4 <= n {
                        if matches(p - 7) { return true }
                        p += 1
                    }
                    continue
                }
                if matches(p - 7) { return true }
                p += 1
            }
            return false
        }
    }

    /// Removes boilerplate lines; returns the text and how many lines went.
    func dropBoilerplate(_ text: String) -> (String, Int) {
        var text = text
        var dropped = 0
        var scratch: [UInt8] = []
        let result: [UInt8] = text.withUTF8 { u in
            var out: [UInt8] = []
            out.reserveCapacity(u.count)
            var first = true
            forEachLine(u) { lo, hi in
                if isBoilerplateLine(u, lo, hi, scratch: &scratch) {
                    dropped += 1
                    return
                }
                if !first { out.append(0x0A) }
                first = false
                out.append(contentsOf: UnsafeBufferPointer(rebasing: u[lo..<hi]))
            }
            return out
        }
        return dropped == 0 ? (text, 0) : (String(decoding: result, as: UTF8.self), dropped)
    }

    func isBoilerplate(_ line: UnsafeBufferPointer<UInt8>, scratch: inout [UInt8]) -> Bool {
        guard let prefixes = phrasePrefixes else { return isBoilerplatePlain(line, scratch: &scratch) }
        // (Lower-casing while searching instead of into the buffer first was slower: that loop vectorises.)
        Self.lowercase(line, into: &scratch)
        return scratch.withUnsafeBytes { all in
            let hay = UnsafeRawBufferPointer(rebasing: all[0..<line.count])
            // One pass over the line: only where its four bytes hash to the head of some phrase are phrases
            // compared (with two-byte heads, common pairs such as "co" sent every position to the phrases).
            guard hay.count >= 4 else { return false }
            return prefixes.withUnsafeBufferPointer { bits in
                for k in 0...(hay.count - 4) {
                    let head = UInt32(littleEndian: hay.loadUnaligned(fromByteOffset: k, as: UInt32.self))
                    let key = Int(Self.headKey(head))
                    guard bits[key >> 6] & (1 << UInt64(key & 63)) != 0 else { continue }
                    for (p, phrase) in phrases.enumerated() where phraseHeads[p] == head && phrase.count <= hay.count - k {
                        if phrase.withUnsafeBytes({ memcmp(hay.baseAddress! + k, $0.baseAddress!, phrase.count) }) == 0 { return true }
                    }
                }
                return false
            }
        }
    }

    /// The line lower-cased (ASCII) into the first `line.count` bytes of the reused buffer, written in place
    /// rather than appended byte by byte.
    static func lowercase(_ line: UnsafeBufferPointer<UInt8>, into scratch: inout [UInt8]) {
        if scratch.count < line.count { scratch = [UInt8](repeating: 0, count: max(line.count, 1024)) }
        scratch.withUnsafeMutableBufferPointer { s in
            for k in 0..<line.count {
                let c = line[k]
                s[k] = c >= 0x41 && c <= 0x5A ? c | 0x20 : c
            }
        }
    }

    /// `isBoilerplate` by searching the lower-cased line for every phrase in turn (when a phrase is shorter
    /// than two bytes; the reference for the one-pass search).
    func isBoilerplatePlain(_ line: UnsafeBufferPointer<UInt8>, scratch: inout [UInt8]) -> Bool {
        Self.lowercase(line, into: &scratch)
        return scratch.withUnsafeBytes { all in
            let hay = UnsafeRawBufferPointer(rebasing: all[0..<line.count])
            for p in phrases where !p.isEmpty && p.count <= hay.count {
                if p.withUnsafeBytes({ Self.contains(hay, $0) }) { return true }
            }
            return false
        }
    }

    /// The first-four-byte bitmap of the boilerplate phrases (nil when a phrase is shorter than four bytes).
    static func prefixBits(_ phrases: [[UInt8]]) -> [UInt64]? {
        var bits = [UInt64](repeating: 0, count: 1024)
        for p in phrases where !p.isEmpty {
            guard p.count >= 4 else { return nil }
            let key = Int(headKey(head(p)))
            bits[key >> 6] |= 1 << UInt64(key & 63)
        }
        return bits
    }

    /// A phrase's first four bytes as one little-endian integer.
    static func head(_ bytes: [UInt8]) -> UInt32 {
        UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
    }

    /// 16 bits of a four-byte head (Fibonacci hashing).
    @inline(__always) static func headKey(_ head: UInt32) -> UInt32 { (head &* 0x9E37_79B1) >> 16 }

    /// Whether `needle` occurs in `hay` (memchr for the first byte, memcmp for the rest; memmem is a GNU
    /// extension that Swift's Glibc module does not export).
    static func contains(_ hay: UnsafeRawBufferPointer, _ needle: UnsafeRawBufferPointer) -> Bool {
        guard needle.count > 0, needle.count <= hay.count, let h = hay.baseAddress, let n = needle.baseAddress else { return false }
        let first = Int32(needle[0])
        var at = 0
        let last = hay.count - needle.count
        while at <= last {
            guard let p = memchr(h + at, first, last - at + 1) else { return false }
            let k = h.distance(to: UnsafeRawPointer(p))
            if memcmp(h + k, n, needle.count) == 0 { return true }
            at = k + 1
        }
        return false
    }

    func isBoilerplate(_ line: Substring) -> Bool {
        var scratch: [UInt8] = []
        var bytes = Array(line.utf8)
        return bytes.withUnsafeMutableBufferPointer { isBoilerplate(UnsafeBufferPointer($0), scratch: &scratch) }
    }
}

/// The optional normalisation step: Unicode NFC, stray HTML entities decoded, control and zero-width
/// characters removed, runs of spaces collapsed, trailing spaces and runs of blank lines trimmed.
public enum TextNormalizer {
    public static func normalize(_ text: String) -> String {
        var t = text
        if t.contains("&") {
            var b = Array(t.utf8)
            t = b.withUnsafeMutableBufferPointer { decodeEntities(UnsafeBufferPointer($0)) }
        }
        t = nfc(t)
        var out = String.UnicodeScalarView()
        var spaceRun = false
        var blankLines = 0
        var lineHasText = false
        for s in t.unicodeScalars {
            let v = s.value
            if v == 0x0A {
                while let l = out.last, l == " " { out.removeLast() }
                if !lineHasText { blankLines += 1 } else { blankLines = 0 }
                if blankLines <= 1 { out.append("\n") }
                lineHasText = false
                spaceRun = false
                continue
            }
            if v == 0x20 || v == 0x09 || v == 0xA0 || v == 0x3000 || (v >= 0x2000 && v <= 0x200A) {
                if lineHasText && !spaceRun { out.append(" ") }
                spaceRun = true
                continue
            }
            if v < 0x20 || (v >= 0x7F && v < 0xA0) || v == 0x200B || v == 0x200C || v == 0x200D || v == 0xFEFF || v == 0x00AD { continue }
            out.append(s)
            spaceRun = false
            lineHasText = true
        }
        while let l = out.last, l == " " || l == "\n" { out.removeLast() }
        return String(out)
    }

    static func decodeEntities(_ b: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "&"), let (v, next) = HTMLText.decodeEntity(b, i), let s = Unicode.Scalar(v) {
                out.append(contentsOf: String(Character(s)).utf8)
                i = next
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
