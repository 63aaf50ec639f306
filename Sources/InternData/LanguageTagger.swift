// Language tagging by script statistics: Han characters make Chinese, code is recognised by its symbols and
// line shapes, and Latin-script text is told apart (English, German, French) by stop-word counts. Not a
// language identifier like fastText's lid.176; enough to route documents to the right cleaning rules.

public enum LanguageTagger {
    static let stopWords: [(lang: String, words: Set<String>)] = [
        (
            "en",
            [
                "the", "and", "of", "to", "in", "is", "that", "for", "it", "with", "as", "was", "on", "are", "you",
                "this", "be", "by", "have", "not", "or", "from", "at", "but", "they", "which", "we", "an", "were", "has",
            ]
        ),
        (
            "de",
            [
                "der", "die", "und", "den", "das", "ist", "nicht", "mit", "sich", "des", "auf", "für", "ein", "eine",
                "dem", "im", "zu", "von", "sie", "wir", "ich", "auch", "es", "werden", "oder", "bei", "aus", "wie", "nach", "sind",
            ]
        ),
        (
            "fr",
            [
                "le", "la", "les", "et", "des", "est", "une", "du", "que", "pour", "dans", "qui", "pas", "sur", "au",
                "avec", "ce", "sont", "par", "plus", "nous", "vous", "il", "elle", "mais", "ou", "aux", "ses", "leur", "cette",
            ]
        ),
    ]

    static let codeKeywords: [String] = [
        "def ", "import ", "#include", "function ", "class ", "return ", "var ", "let ", "const ", "public ",
        "private ", "static ", "func ", "fn ", "if (", "for (", "while (", "} else", "#!/", "package ", "using ",
    ]

    /// A language tag for `text`: "zh", "code", "en", "de", "fr" or "other".
    public static func tag(_ text: String) -> String {
        var text = text
        return text.withUTF8 { tag(utf8: $0) }
    }

    /// What the tagger counts in the first 20,000 scalars (a stray byte counts as one).
    struct ScriptCounts: Equatable {
        var han = 0, kana = 0, hangul = 0, letters = 0, codeSymbols = 0, total = 0
    }

    static let alphabeticScalars = ScalarBitmap { $0.properties.isAlphabetic }

    static func scriptCounts(_ u: UnsafeBufferPointer<UInt8>) -> ScriptCounts {
        var han = 0, kana = 0, hangul = 0, letters = 0, codeSymbols = 0, total = 0
        var seen = 0
        var i = 0
        let n = u.count
        let alphabetic = alphabeticScalars
        while i < n {
            seen += 1
            if seen > 20_000 { break }
            let c = u[i]
            if c < 0x80 {
                // A run of ASCII without branches on the byte: its class bits are added up (see `asciiClass`).
                let end = min(n, i + (20_001 - seen))
                var k = i
                asciiClass.withUnsafeBufferPointer { t in
                    while k < end {
                        let b = u[k]
                        if b >= 0x80 { break }
                        let x = Int(t[Int(b)])
                        letters &+= x & 1
                        codeSymbols &+= (x >> 1) & 1
                        total &+= x >> 2
                        k += 1
                    }
                }
                seen += k - i - 1
                i = k
                continue
            }
            let (v, len) = decodeScalar(u, i)
            i += len
            total += 1
            if isHan(v) {
                han += 1
            } else if (0x3040...0x30FF).contains(v) {
                kana += 1
            } else if (0xAC00...0xD7AF).contains(v) {
                hangul += 1
            } else if (0xC0...0x24F).contains(v) || alphabetic.contains(v) {
                letters += 1
            }
        }
        return ScriptCounts(han: han, kana: kana, hangul: hangul, letters: letters, codeSymbols: codeSymbols, total: total)
    }

    static func tag(utf8 u: UnsafeBufferPointer<UInt8>) -> String {
        let sc = scriptCounts(u)
        let (han, kana, hangul, letters, codeSymbols, total) = (sc.han, sc.kana, sc.hangul, sc.letters, sc.codeSymbols, sc.total)
        guard total > 0 else { return "other" }
        if han > 0 && Double(han) >= 0.2 * Double(han + letters + kana + hangul) && kana < han / 4 { return "zh" }
        if kana + hangul > letters { return "other" }
        if isCode(u, symbols: codeSymbols, total: total) { return "code" }
        guard letters > 0 else { return "other" }
        // Latin script: the language whose stop words are most frequent (words compared by hash).
        var counts = [0, 0, 0]
        var words = 0
        var h = TextStats.fnvOffset
        var inWord = false
        let table = stopWordTable
        let letterLower = self.letterLower
        for c in u {
            let lower = letterLower[Int(c)]
            if lower != 0 {
                h = (h ^ UInt64(lower)) &* TextStats.fnvPrime
                inWord = true
            } else if inWord {
                words += 1
                let languages = table.lookup(h)
                if languages != 0 { for k in 0..<3 where languages & (1 << k) != 0 { counts[k] += 1 } }
                h = TextStats.fnvOffset
                inWord = false
                if words >= 3000 { break }
            }
        }
        if inWord && words < 3000 {
            words += 1
            let languages = table.lookup(h)
            for k in 0..<3 where languages & (1 << k) != 0 { counts[k] += 1 }
        }
        guard let best = counts.indices.max(by: { counts[$0] < counts[$1] }), words > 0 else { return "other" }
        if counts[best] * 20 < words { return "other" }
        return stopWords[best].lang
    }

    /// Per byte: 0 unless it belongs to a word for the stop-word count (an ASCII letter or any byte of a
    /// non-ASCII scalar), else the byte lower-cased.
    nonisolated(unsafe) static let letterLower = ByteTable.make { b in
        b >= 0x80 ? b : ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A ? b | 0x20 : 0)
    }

    /// Per ASCII byte, what the tagger counts: bit 0 a letter, bit 1 a code symbol, bit 2 any character
    /// above the space (letters and symbols included).
    static let asciiClass: [UInt8] = (0..<128).map { (c: Int) -> UInt8 in
        if (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A { return 0b101 }
        if [0x7B, 0x7D, 0x3B, 0x3D, 0x28, 0x29, 0x5B, 0x5D, 0x3C, 0x3E, 0x24, 0x5F].contains(c) { return 0b110 }
        return c > 0x20 ? 0b100 : 0
    }

    /// One UTF-8 scalar at `i` (a stray byte decodes as itself) and its length.
    @inline(__always) static func decodeScalar(_ u: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let c = u[i], n = u.count
        if c >= 0xF0, i + 3 < n {
            return ((UInt32(c & 0x07) << 18) | (UInt32(u[i + 1] & 0x3F) << 12) | (UInt32(u[i + 2] & 0x3F) << 6) | UInt32(u[i + 3] & 0x3F), 4)
        } else if c >= 0xE0, i + 2 < n {
            return ((UInt32(c & 0x0F) << 12) | (UInt32(u[i + 1] & 0x3F) << 6) | UInt32(u[i + 2] & 0x3F), 3)
        } else if c >= 0xC0, i + 1 < n {
            return ((UInt32(c & 0x1F) << 6) | UInt32(u[i + 1] & 0x3F), 2)
        }
        return (UInt32(c), 1)
    }

    static let stopWordHashes: [Set<UInt64>] = stopWords.map { Set($0.words.map(TextStats.wordHash)) }

    /// Stop-word hash → bit mask of the languages (bit k: `stopWords[k]`), in an open-addressing table: a
    /// Set<UInt64> re-hashes every word with SipHash, which was most of the tagger's time.
    struct StopWordTable {
        var keys: [UInt64]
        var languages: [UInt8]
        let mask: Int

        init(_ lists: [Set<UInt64>]) {
            keys = [UInt64](repeating: 0, count: 512)
            languages = [UInt8](repeating: 0, count: 512)
            mask = 511
            for (k, list) in lists.enumerated() {
                for h in list {
                    var slot = Self.slot(h, mask)
                    while keys[slot] != 0 && keys[slot] != h { slot = (slot + 1) & mask }
                    keys[slot] = h
                    languages[slot] |= 1 << k
                }
            }
        }

        @inline(__always) static func slot(_ h: UInt64, _ mask: Int) -> Int { Int(truncatingIfNeeded: h ^ (h >> 29)) & mask }

        @inline(__always) func lookup(_ h: UInt64) -> UInt8 {
            var slot = Self.slot(h, mask)
            while true {
                let k = keys[slot]
                if k == h { return languages[slot] }
                if k == 0 { return 0 }
                slot = (slot + 1) & mask
            }
        }
    }

    static let stopWordTable = StopWordTable(stopWordHashes)

    static let codeKeywordBytes: [[UInt8]] = codeKeywords.map { Array($0.utf8) } + [Array("//".utf8), Array("# ".utf8)]

    /// Whether at least half of the first 400 non-empty lines look like code (end in `;{}):` or start with a
    /// keyword or comment).
    static func isCode(_ u: UnsafeBufferPointer<UInt8>, symbols: Int, total: Int) -> Bool {
        guard Double(symbols) >= 0.05 * Double(total) else { return false }
        var lines = 0, codeLines = 0, nonEmpty = 0
        var start = 0
        let n = u.count
        while start < n && nonEmpty < 400 {
            var end = start
            while end < n && u[end] != 0x0A { end += 1 }
            var s = start
            while s < end && (u[s] == 0x20 || u[s] == 0x09) { s += 1 }
            if end > start { nonEmpty += 1 }
            start = end + 1
            if s == end { continue }
            lines += 1
            let last = u[end - 1]
            if last == 0x3B || last == 0x7B || last == 0x7D || last == 0x29 || last == 0x3A { codeLines += 1; continue }
            for k in codeKeywordBytes where k.count <= end - s {
                var match = true
                for j in 0..<k.count where u[s + j] != k[j] { match = false; break }
                if match { codeLines += 1; break }
            }
        }
        return lines > 0 && Double(codeLines) >= 0.5 * Double(lines)
    }

    static func isCode(_ text: String, symbols: Int, total: Int) -> Bool {
        var text = text
        return text.withUTF8 { isCode($0, symbols: symbols, total: total) }
    }

    /// CJK unified ideographs (basic, extension A, compatibility, extension B and on).
    @inline(__always) public static func isHan(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0xF900...0xFAFF).contains(v)
            || (0x20000...0x2FA1F).contains(v)
    }
}
