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
        var han = 0, kana = 0, hangul = 0, letters = 0, codeSymbols = 0, total = 0
        var seen = 0
        for s in text.unicodeScalars {
            seen += 1
            if seen > 20_000 { break }
            let v = s.value
            if v < 0x80 {
                if (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) {
                    letters += 1; total += 1
                } else if v == 0x7B || v == 0x7D || v == 0x3B || v == 0x3D || v == 0x28 || v == 0x29 || v == 0x5B || v == 0x5D
                    || v == 0x3C || v == 0x3E || v == 0x24 || v == 0x5F
                {
                    codeSymbols += 1; total += 1
                } else if v > 0x20 {
                    total += 1
                }
                continue
            }
            total += 1
            if isHan(v) {
                han += 1
            } else if (0x3040...0x30FF).contains(v) {
                kana += 1
            } else if (0xAC00...0xD7AF).contains(v) {
                hangul += 1
            } else if (0xC0...0x24F).contains(v) || s.properties.isAlphabetic {
                letters += 1
            }
        }
        guard total > 0 else { return "other" }
        if han > 0 && Double(han) >= 0.2 * Double(han + letters + kana + hangul) && kana < han / 4 { return "zh" }
        if kana + hangul > letters { return "other" }
        if isCode(text, symbols: codeSymbols, total: total) { return "code" }
        guard letters > 0 else { return "other" }
        // Latin script: the language whose stop words are most frequent (words compared by hash).
        var counts = [Int](repeating: 0, count: stopWords.count)
        var words = 0
        var text = text
        text.withUTF8 { u in
            var h = TextStats.fnvOffset
            var inWord = false
            for c in u {
                let letter = c >= 0x80 || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A)
                if letter {
                    h = (h ^ UInt64(c >= 0x41 && c <= 0x5A ? c | 0x20 : c)) &* TextStats.fnvPrime
                    inWord = true
                } else if inWord {
                    words += 1
                    for k in stopWordHashes.indices where stopWordHashes[k].contains(h) { counts[k] += 1 }
                    h = TextStats.fnvOffset
                    inWord = false
                    if words >= 3000 { break }
                }
            }
            if inWord {
                words += 1
                for k in stopWordHashes.indices where stopWordHashes[k].contains(h) { counts[k] += 1 }
            }
        }
        guard let best = counts.indices.max(by: { counts[$0] < counts[$1] }), words > 0 else { return "other" }
        if counts[best] * 20 < words { return "other" }
        return stopWords[best].lang
    }

    static let stopWordHashes: [Set<UInt64>] = stopWords.map { Set($0.words.map(TextStats.wordHash)) }

    static func isCode(_ text: String, symbols: Int, total: Int) -> Bool {
        guard Double(symbols) >= 0.05 * Double(total) else { return false }
        var lines = 0, codeLines = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).prefix(400) {
            let t = line.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            if t.isEmpty { continue }
            lines += 1
            if let last = t.last, last == ";" || last == "{" || last == "}" || last == ")" || last == ":" { codeLines += 1; continue }
            if codeKeywords.contains(where: { t.hasPrefix($0) }) || t.hasPrefix("//") || t.hasPrefix("# ") { codeLines += 1 }
        }
        return lines > 0 && Double(codeLines) >= 0.5 * Double(lines)
    }

    /// CJK unified ideographs (basic, extension A, compatibility, extension B and on).
    @inline(__always) public static func isHan(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0xF900...0xFAFF).contains(v)
            || (0x20000...0x2FA1F).contains(v)
    }
}
