// The safety stage (`intern data safety`): URL and domain blocklists, bad-word lists (C4 removes every
// page with a word from the LDNOOBW list; English words match whole words, Chinese entries match as
// substrings since Chinese has no spaces, so single-character entries are skipped and more hits are needed),
// and PII masking: e-mail addresses, phone numbers, Chinese resident ID numbers (with their ISO 7064
// checksum) and IPv4 addresses, each replaced by a tag and counted.
import Foundation

/// Settings of the safety stage; every key can be set in a JSON file (snake_case).
public struct SafetyConfig: Codable, Sendable, Equatable {
    /// Documents whose URL host is one of these domains (or a subdomain of one) are removed.
    public var blockedDomains: [String] = []
    /// Files with one blocked domain a line (`#` comments allowed).
    public var domainBlocklistFiles: [String] = []
    /// Documents whose URL contains one of these strings are removed.
    public var blockedUrlSubstrings: [String] = []
    /// Word-list files: `en`-style lists match whole words; lists whose entries are Chinese match substrings.
    /// Empty: the LDNOOBW lists in Assets/safety/ldnoobw.
    public var wordListFiles: [String] = []
    /// Remove a non-Chinese document with at least this many bad-word occurrences. C4 removes a page at 1,
    /// which drops news and health pages that say "sex" or "sexual" once; 3 keeps those.
    public var maxBadWords = 3
    /// Remove a Chinese document with at least this many bad-word occurrences.
    public var zhMaxBadWords = 3
    /// Chinese entries shorter than this many characters are ignored (乳 alone matches 乳业, dairy).
    public var zhMinWordChars = 2
    public var maskEmails = true
    public var maskPhones = true
    public var maskIdNumbers = true
    public var maskIps = true

    public init() {}

    public static func load(path: String?) throws(DatasetError) -> SafetyConfig {
        try ConfigLoader.load(SafetyConfig.self, defaults: SafetyConfig(), path: path)
    }
}

/// The safety filter.
public struct SafetyFilter: DocumentFilter {
    public let config: SafetyConfig
    let domains: Set<String>
    /// English words and phrases (as lists of word hashes), indexed by the first word's hash.
    let phrases: [UInt64: [[UInt64]]]
    /// A bit per low 16 bits of the phrases' first-word hashes: most words miss it and skip the dictionary.
    let firstWordBits: [UInt64]
    /// Chinese entries as scalar arrays, indexed by the first scalar.
    let chinese: [UInt32: [[UInt32]]]
    public var stageName: String { "safety" }

    /// Builds the filter; reads the word lists and domain blocklists named in `config`.
    public init(config: SafetyConfig = SafetyConfig()) throws(DatasetError) {
        self.config = config
        var domains = Set(config.blockedDomains.map { $0.lowercased() })
        for file in config.domainBlocklistFiles {
            for line in try Self.lines(file) { domains.insert(line.lowercased()) }
        }
        self.domains = domains
        var phrases: [UInt64: [[UInt64]]] = [:]
        var chinese: [UInt32: [[UInt32]]] = [:]
        let files = config.wordListFiles.isEmpty ? try Self.defaultWordLists() : config.wordListFiles
        for file in files {
            for entry in try Self.lines(file) {
                let scalars = entry.unicodeScalars.map(\.value)
                if scalars.contains(where: LanguageTagger.isHan) {
                    guard scalars.count >= config.zhMinWordChars else { continue }
                    chinese[scalars[0], default: []].append(scalars)
                } else {
                    let words = SafetyFilter.wordHashes(entry)
                    guard let first = words.first else { continue }
                    phrases[first, default: []].append(words)
                }
            }
        }
        self.phrases = phrases
        var bits = [UInt64](repeating: 0, count: 1024)
        for first in phrases.keys { bits[Int(first & 0xFFFF) >> 6] |= 1 << (first & 63) }
        firstWordBits = bits
        self.chinese = chinese
    }

    static func lines(_ path: String) throws(DatasetError) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .io(file: path, message: "cannot read the list")
        }
        return text.split(whereSeparator: \.isNewline).map { String($0.trimmedWhitespace()) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// The LDNOOBW lists shipped in Assets/safety/ldnoobw, found from the working directory or from the
    /// executable's location (.build/<config>/intern inside the repository).
    public static func defaultWordLists() throws(DatasetError) -> [String] {
        let relative = "Assets/safety/ldnoobw"
        var candidates = [FileManager.default.currentDirectoryPath]
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(dir.path)
            dir.deleteLastPathComponent()
        }
        candidates.append(
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().path)
        for base in candidates {
            let en = base + "/" + relative + "/en", zh = base + "/" + relative + "/zh"
            if FileManager.default.fileExists(atPath: en) && FileManager.default.fileExists(atPath: zh) { return [en, zh] }
        }
        throw .io(file: relative, message: "the default word lists were not found; set word_list_files in the safety config")
    }

    /// Hashes of the words of `text`: runs of ASCII letters, digits, apostrophes and non-ASCII bytes, with
    /// ASCII lower-cased (byte-level, so no Unicode tables on the hot path).
    /// Per byte: 0 unless it belongs to a word (ASCII letters, digits, the apostrophe, any byte of a non-ASCII
    /// scalar), else the byte lower-cased.
    nonisolated(unsafe) static let wordLower = ByteTable.make { b in
        let word = b >= 0x80 || b == 0x27 || (b >= 0x30 && b <= 0x39) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A)
        return word ? (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) : 0
    }

    static func wordHashes(_ text: String) -> [UInt64] {
        var text = text
        return text.withUTF8 { u in
            // At most one word per two bytes (a word and a separator), written in place: appending checked the
            // array's uniqueness and capacity per word.
            [UInt64](unsafeUninitializedCapacity: u.count / 2 + 1) { out, count in
                var n = 0
                var h = TextStats.fnvOffset
                var inWord = false
                let wordLower = Self.wordLower
                for c in u {
                    let lower = wordLower[Int(c)]
                    if lower != 0 {
                        h = (h ^ UInt64(lower)) &* TextStats.fnvPrime
                        inWord = true
                    } else if inWord {
                        out[n] = h
                        n += 1
                        h = TextStats.fnvOffset
                        inWord = false
                    }
                }
                if inWord {
                    out[n] = h
                    n += 1
                }
                count = n
            }
        }
    }

    // MARK: Filtering

    public func apply(_ document: Document) -> FilterResult {
        if let rule = blockedURL(document.url) { return .remove(rule: rule) }
        let hits = badWordHits(document.text, chinese: document.lang == "zh")
        if document.lang == "zh" ? hits >= config.zhMaxBadWords : hits >= config.maxBadWords {
            return .remove(rule: "bad_words")
        }
        var doc = document
        var counts: [String: Int] = [:]
        let (masked, found) = PIIMasker.mask(doc.text, options: config)
        doc.text = masked
        for (k, v) in found where v > 0 { counts["pii:" + k] = v }
        if hits > 0 { counts["bad_words:kept_below_limit"] = hits }
        return .keep(doc, counts: counts)
    }

    func blockedURL(_ url: String) -> String? {
        guard !url.isEmpty else { return nil }
        let lower = url.lowercased()
        for s in config.blockedUrlSubstrings where lower.contains(s.lowercased()) { return "url_blocklist" }
        guard !domains.isEmpty, let host = URLComponents(string: url)?.host?.lowercased() else { return nil }
        var h = Substring(host)
        while true {
            if domains.contains(String(h)) { return "domain_blocklist" }
            guard let dot = h.firstIndex(of: ".") else { return nil }
            h = h[h.index(after: dot)...]
        }
    }

    /// Occurrences of listed words: whole words (and phrases) outside Chinese, substrings in Chinese text.
    public func badWordHits(_ text: String, chinese isChinese: Bool) -> Int {
        var hits = 0
        if !phrases.isEmpty {
            let words = Self.wordHashes(text)
            for (k, w) in words.enumerated() {
                guard firstWordBits[Int(w & 0xFFFF) >> 6] & (1 << (w & 63)) != 0, let candidates = phrases[w] else { continue }
                for p in candidates where k + p.count <= words.count {
                    if p.count == 1 || words[k..<(k + p.count)].elementsEqual(p) { hits += 1; break }
                }
            }
        }
        if isChinese && !chinese.isEmpty {
            let scalars = text.unicodeScalars.map(\.value)
            var i = 0
            while i < scalars.count {
                var advanced = false
                if let candidates = chinese[scalars[i]] {
                    for c in candidates where i + c.count <= scalars.count && scalars[i..<(i + c.count)].elementsEqual(c) {
                        hits += 1
                        i += c.count
                        advanced = true
                        break
                    }
                }
                if !advanced { i += 1 }
            }
        }
        return hits
    }
}

// MARK: - PII

/// Finds and masks personal data in text.
public enum PIIMasker {
    public static let emailTag = "<EMAIL>", phoneTag = "<PHONE>", idTag = "<ID_NUMBER>", ipTag = "<IP>"

    /// Masks what `options` asks for; returns the text and the number of masks per kind.
    public static func mask(_ text: String, options: SafetyConfig = SafetyConfig()) -> (String, [String: Int]) {
        var bytes = Array(text.utf8)
        var counts: [String: Int] = [:]
        // Order matters: e-mails can hold digits, ID numbers are longer digit runs than phones.
        if options.maskEmails { counts["email"] = maskEmails(&bytes) }
        if options.maskIdNumbers { counts["id_number"] = maskIdNumbers(&bytes) }
        if options.maskPhones { counts["phone"] = maskPhones(&bytes) }
        if options.maskIps { counts["ip"] = maskIps(&bytes) }
        return (String(decoding: bytes, as: UTF8.self), counts)
    }

    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    @inline(__always) static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }
    @inline(__always) static func isLocal(_ c: UInt8) -> Bool {
        isDigit(c) || isAlpha(c) || c == 0x2E || c == 0x5F || c == 0x25 || c == 0x2B || c == 0x2D
    }
    @inline(__always) static func isDomain(_ c: UInt8) -> Bool { isDigit(c) || isAlpha(c) || c == 0x2E || c == 0x2D }

    /// Replaces byte ranges (sorted, disjoint) by `tag`.
    static func replace(_ bytes: inout [UInt8], _ ranges: [Range<Int>], tag: String) {
        guard !ranges.isEmpty else { return }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var last = 0
        for r in ranges {
            out.append(contentsOf: bytes[last..<r.lowerBound])
            out.append(contentsOf: tag.utf8)
            last = r.upperBound
        }
        out.append(contentsOf: bytes[last...])
        bytes = out
    }

    static func maskEmails(_ b: inout [UInt8]) -> Int {
        var ranges: [Range<Int>] = []
        var i = 0
        while i < b.count {
            if b[i] != 0x40 { i += 1; continue }
            var s = i
            while s > 0 && isLocal(b[s - 1]) { s -= 1 }
            while s < i && (b[s] == 0x2E || b[s] == 0x2D) { s += 1 }
            var e = i + 1
            while e < b.count && isDomain(b[e]) { e += 1 }
            while e > i + 1 && (b[e - 1] == 0x2E || b[e - 1] == 0x2D) { e -= 1 }
            let domain = b[(i + 1)..<e]
            if s < i, let dot = domain.lastIndex(of: 0x2E), dot > i + 1, e - dot - 1 >= 2,
                b[(dot + 1)..<e].allSatisfy(isAlpha), ranges.last.map({ $0.upperBound <= s }) ?? true
            {
                ranges.append(s..<e)
                i = e
            } else {
                i += 1
            }
        }
        replace(&b, ranges, tag: emailTag)
        return ranges.count
    }

    static let idWeights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    static let idCheck: [UInt8] = Array("10X98765432".utf8)

    /// True for an 18-character Chinese resident ID number with a plausible birth month and a valid checksum.
    public static func isChineseID(_ s: some Collection<UInt8>) -> Bool {
        let c = Array(s)
        guard c.count == 18, c[0..<17].allSatisfy(isDigit), isDigit(c[17]) || c[17] == 0x58 || c[17] == 0x78 else { return false }
        let month = Int(c[10] - 0x30) * 10 + Int(c[11] - 0x30)
        let day = Int(c[12] - 0x30) * 10 + Int(c[13] - 0x30)
        guard (1...12).contains(month), (1...31).contains(day) else { return false }
        var sum = 0
        for k in 0..<17 { sum += Int(c[k] - 0x30) * idWeights[k] }
        let expected = idCheck[sum % 11]
        return (c[17] == 0x78 ? 0x58 : c[17]) == expected
    }

    static func maskIdNumbers(_ b: inout [UInt8]) -> Int {
        var ranges: [Range<Int>] = []
        var i = 0
        while i + 18 <= b.count {
            if !isDigit(b[i]) || (i > 0 && (isDigit(b[i - 1]) || isAlpha(b[i - 1]))) { i += 1; continue }
            let e = i + 18
            if isChineseID(b[i..<e]) && (e == b.count || !(isDigit(b[e]) || isAlpha(b[e]))) {
                ranges.append(i..<e)
                i = e
            } else {
                i += 1
            }
        }
        replace(&b, ranges, tag: idTag)
        return ranges.count
    }

    /// Phone numbers: Chinese mobiles (1[3-9] and 9 digits), and numbers written in groups such as
    /// +1 (555) 123-4567, 010-8888-6666 or +49 30 1234 5678: 10 to 13 digits, groups of 2+ digits, the last
    /// of 3+, joined by single spaces, dashes, dots or parentheses, with a leading + or at least two separators.
    static func maskPhones(_ b: inout [UInt8]) -> Int {
        var ranges: [Range<Int>] = []
        var i = 0
        while i < b.count {
            let c = b[i]
            guard isDigit(c) || c == 0x2B || c == 0x28 else { i += 1; continue }
            if i > 0 && (isDigit(b[i - 1]) || isAlpha(b[i - 1]) || b[i - 1] == 0x2E || b[i - 1] == 0x2D) { i += 1; continue }
            var e = i
            var digits = 0, separators = 0
            var groups: [Int] = []
            var current = 0
            var lastWasSeparator = false
            var runLength = 0
            var valid = true
            while e < b.count && e - i < 24 {
                let d = b[e]
                if isDigit(d) {
                    digits += 1; current += 1; lastWasSeparator = false
                } else if d == 0x20 || d == 0x2D || d == 0x2E || d == 0x28 || d == 0x29 || (d == 0x2B && e == i) {
                    if d == 0x2B { e += 1; continue }
                    if current > 0 { groups.append(current); current = 0 }
                    // At most two separators in a row, and not the same one twice (") " and " (" are fine).
                    if lastWasSeparator && (runLength >= 2 || b[e - 1] == d) { break }
                    runLength = lastWasSeparator ? runLength + 1 : 1
                    separators += 1
                    lastWasSeparator = true
                } else {
                    break
                }
                e += 1
            }
            if current > 0 { groups.append(current) }
            // Drop trailing separators.
            while e > i && !isDigit(b[e - 1]) { e -= 1 }
            if e < b.count && (isAlpha(b[e]) || isDigit(b[e])) { valid = false }
            let plus = c == 0x2B
            let chineseMobile = groups.count == 1 && digits == 11 && b[i] == 0x31 && (0x33...0x39).contains(b[i + 1])
            let grouped =
                (10...13).contains(digits) && groups.count >= 2 && groups.dropFirst().allSatisfy { $0 >= 2 }
                && (groups.last ?? 0) >= 3 && (plus || separators >= 2 || groups.count >= 3)
            if valid && (chineseMobile || grouped) && ranges.last.map({ $0.upperBound <= i }) ?? true {
                ranges.append(i..<e)
                i = e
            } else {
                i += 1
            }
        }
        replace(&b, ranges, tag: phoneTag)
        return ranges.count
    }

    static func maskIps(_ b: inout [UInt8]) -> Int {
        var ranges: [Range<Int>] = []
        var i = 0
        while i < b.count {
            guard isDigit(b[i]), i == 0 || !(isDigit(b[i - 1]) || isAlpha(b[i - 1]) || b[i - 1] == 0x2E) else { i += 1; continue }
            var e = i
            var parts = 0
            var ok = true
            while parts < 4 {
                var v = 0, n = 0
                while e < b.count && isDigit(b[e]) && n < 4 { v = v * 10 + Int(b[e] - 0x30); n += 1; e += 1 }
                if n == 0 || n > 3 || v > 255 { ok = false; break }
                parts += 1
                if parts < 4 {
                    if e < b.count && b[e] == 0x2E { e += 1 } else { ok = false; break }
                }
            }
            if ok && parts == 4 && !(e < b.count && (isDigit(b[e]) || isAlpha(b[e]) || (b[e] == 0x2E && e + 1 < b.count && isDigit(b[e + 1])))) {
                ranges.append(i..<e)
                i = e
            } else {
                i += 1
            }
        }
        replace(&b, ranges, tag: ipTag)
        return ranges.count
    }
}
