import Foundation
import Testing

@testable import InternData

/// The pipeline's fast paths against the plain code they replace, on crafted inputs.
@Suite("Fast paths match the plain code")
struct FastPathTests {
    /// Texts with boilerplate, sentence and non-sentence lines in several scripts, and edge cases.
    static let texts: [String] = [
        "",
        "\n",
        "\n\n\n",
        " \t \r\n",
        "A single line without an end",
        "Cookie settings\nPrivacy Policy\nAll rights reserved.",
        DataFixtures.english,
        DataFixtures.chinese,
        DataFixtures.english + "\nWe use cookies to improve this site.\nHome | About | Contact\n" + DataFixtures.chinese,
        "  This line has five words in it.  \r\nshort.\nThis line ends with a quote and has words\"\n\nAnother one here ends right here!\n",
        "Sign in to continue reading the rest of this fine article today.\n\n\nThe end is near, so they say, friends.",
        "这是一个很长的中文句子，它以句号结尾，并且包含了足够多的汉字。\n版权所有 © 2024 某某公司\n短句。\n联系我们\n"
            + "这一行没有句末标点但是有很多很多很多汉字\n他说：“今天的天气真的非常非常好，我们一起去公园散步吧。”",
        "Mixed 中文 and English text here. 这是混合的句子，有标点。\nDatenschutz und Impressum\nMentions légales du site.\n",
        String(repeating: "cookie ", count: 40) + "\n" + String(repeating: "x", count: 900) + " cookie\n" + String(repeating: "é", count: 201)
            + " cookie.\n" + String(repeating: "é", count: 199) + " cookie.",
        "Line with trailing tab.\t\n\tLeading tab line with enough words here.\n...\n\u{201D}\n“Quoted sentence with five words.”",
        "😀 emoji line with several words and an end!\n😀😀😀\n🇫🇷 Bonjour à tous les amis de la ville.\n",
        "Copyright © 2024 Example Inc. All rights reserved.\nTerms of Service | Privacy Policy\nLOG IN\n",
    ]

    /// The defaults, and short boilerplate lines with one-word sentences.
    static var lineConfigs: [CleanConfig] {
        var c = CleanConfig()
        c.boilerplateMaxLineChars = 10
        c.c4MinLineWords = 1
        return [CleanConfig(), c]
    }

    @Test func boilerplateAndC4InOnePass() {
        for chinese in [false, true] {
            for (k, text) in Self.texts.enumerated() {
                for config in Self.lineConfigs {
                    let cleaner = Cleaner(config: config)
                    let (dropped, d) = cleaner.dropBoilerplate(text)
                    let (plain, f) = cleaner.sentenceLines(dropped, chinese: chinese)
                    let (fast, d2, f2) = cleaner.dropBoilerplateAndFilter(text, chinese: chinese)
                    #expect(Array(fast.utf8) == Array(plain.utf8), "text \(k), chinese \(chinese)")
                    #expect(d2 == d, "text \(k), chinese \(chinese)")
                    #expect(f2 == f, "text \(k), chinese \(chinese)")
                }
            }
        }
    }

    /// `Cleaner.clean` with the two line passes run one after the other, as before they were merged.
    static func plainClean(_ cleaner: Cleaner, _ document: Document) -> CleanDecision {
        var doc = document
        if doc.lang.isEmpty { doc.lang = LanguageTagger.tag(doc.text) }
        if cleaner.containsLoremIpsum(doc.text) { return .remove(rule: "lorem_ipsum") }
        let (text, dropped) = cleaner.dropBoilerplate(doc.text)
        doc.text = text
        var filtered = 0
        if doc.lang != "code" { (doc.text, filtered) = cleaner.sentenceLines(doc.text, chinese: doc.lang == "zh") }
        if let rule = cleaner.failingRule(doc) { return .remove(rule: rule) }
        return .keep(doc, droppedLines: dropped, filteredLines: filtered)
    }

    @Test func cleanDecisionsUnchangedByTheMergedPass() {
        let cleaner = Cleaner()
        var texts = Self.texts
        // Long enough to pass the length rules once the boilerplate is gone.
        texts.append("Cookie settings\n" + DataFixtures.english + "\nAll rights reserved.\nMenu\n")
        texts.append("版权所有\n" + DataFixtures.chinese + "\n联系我们")
        for (k, text) in texts.enumerated() {
            for lang in ["", "en", "zh", "code"] {
                let doc = Document(id: "t", text: text, lang: lang)
                #expect(cleaner.clean(doc) == Self.plainClean(cleaner, doc), "text \(k), lang \(lang)")
            }
        }
    }

    /// The tagger's first loop as it was before the ASCII runs.
    static func plainScriptCounts(_ u: UnsafeBufferPointer<UInt8>) -> LanguageTagger.ScriptCounts {
        var r = LanguageTagger.ScriptCounts()
        var seen = 0
        var i = 0
        while i < u.count {
            seen += 1
            if seen > 20_000 { break }
            let c = u[i]
            if c < 0x80 {
                i += 1
                if (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A {
                    r.letters += 1
                    r.total += 1
                } else if [0x7B, 0x7D, 0x3B, 0x3D, 0x28, 0x29, 0x5B, 0x5D, 0x3C, 0x3E, 0x24, 0x5F].contains(c) {
                    r.codeSymbols += 1
                    r.total += 1
                } else if c > 0x20 {
                    r.total += 1
                }
                continue
            }
            let (v, len) = LanguageTagger.decodeScalar(u, i)
            i += len
            r.total += 1
            if LanguageTagger.isHan(v) {
                r.han += 1
            } else if (0x3040...0x30FF).contains(v) {
                r.kana += 1
            } else if (0xAC00...0xD7AF).contains(v) {
                r.hangul += 1
            } else if (0xC0...0x24F).contains(v) || (Unicode.Scalar(v)?.properties.isAlphabetic ?? false) {
                r.letters += 1
            }
        }
        return r
    }

    @Test func taggerCountsMatchThePlainLoop() {
        let allASCII = String((0..<128).map { Character(Unicode.Scalar(UInt8($0))) })
        var texts =
            Self.texts + [
                allASCII, "function f() { return [a, b]; } // $x_1 <y>", "ひらがなとカタカナ 한국어 текст ÀÉÎõü",
                String(repeating: "a", count: 19_999) + "中文",
                String(repeating: "a", count: 20_000) + "中文",
                String(repeating: "中", count: 19_999) + "abc{};",
                String(repeating: "ab 中", count: 7_000),
                String(repeating: "x", count: 25_000),
            ]
        texts.append(String(repeating: DataFixtures.english + "\n", count: 30))
        for (k, text) in texts.enumerated() {
            var t = text
            t.withUTF8 { u in
                #expect(LanguageTagger.scriptCounts(u) == Self.plainScriptCounts(u), "text \(k)")
            }
        }
        // Stray bytes (not valid UTF-8) are counted alike too.
        let stray: [UInt8] = [0x61, 0x80, 0xFF, 0x62, 0xE4, 0xB8, 0x41, 0xC3, 0x7B]
        stray.withUnsafeBufferPointer { u in #expect(LanguageTagger.scriptCounts(u) == Self.plainScriptCounts(u)) }
    }

    /// What one filter stage writes (output, removed documents, counts, bad records) from `input`, read by
    /// `DocumentReader` one document at a time or in chunks by `runJSONLines`.
    func runStage(_ filter: any DocumentFilter, input: String, threads: Int, chunked: Bool, dir: String) throws -> [String] {
        let out = dir + "/out-\(chunked)-\(threads).jsonl", removed = dir + "/removed-\(chunked)-\(threads).jsonl"
        let writer = try DocumentWriter(path: out)
        var runner = StageRunner(filters: [filter], threads: threads)
        runner.removedWriter = try DocumentWriter(path: removed)
        var bad = BadInputLog()
        let stats: [StageStats]
        if chunked {
            stats = try runner.runJSONLines(paths: [input], strict: false, writer: writer, bad: &bad)
        } else {
            let reader = DocumentReader(paths: [input], strict: false)
            stats = try runner.run(next: reader.next, write: writer.write)
            bad = reader.bad
        }
        try writer.finish()
        try runner.removedWriter?.finish()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var s = stats
        for k in s.indices { s[k].seconds = 0 }
        return [
            try String(contentsOfFile: out, encoding: .utf8), try String(contentsOfFile: removed, encoding: .utf8),
            String(decoding: try encoder.encode(s), as: UTF8.self), "\(bad.count) \(bad.examples)",
        ]
    }

    @Test func singleStageCommandsOnWorkerThreads() throws {
        let dir = DataFixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/in.jsonl.gz"
        _ = try ChunkRunnerTests().writeInput(input)
        var safety = SafetyConfig()
        safety.wordListFiles = [DataFixtures.asset("safety/ldnoobw/en"), DataFixtures.asset("safety/ldnoobw/zh")]
        var quality = QualityConfig()
        quality.model = DataFixtures.asset("quality/web-quality.ikqm")
        quality.threshold = 0.05
        let filters: [any DocumentFilter] = [Cleaner(), try SafetyFilter(config: safety), try QualityFilter(config: quality)]
        for filter in filters {
            let plain = try runStage(filter, input: input, threads: 1, chunked: false, dir: dir)
            #expect(!plain[0].isEmpty)
            for threads in [1, 2, 3] {
                let chunked = try runStage(filter, input: input, threads: threads, chunked: true, dir: dir)
                #expect(chunked == plain, "\(filter.stageName), \(threads) threads")
            }
        }
    }

    @Test func boilerplateSearchMatchesThePlainOne() {
        var lines = Self.texts.flatMap { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        lines += [
            "COOKIE", "Cookies", "cooki", "c", "co", "xxcookie", "PRIVACY POLICY!", "privacy  policy", "Log In", "login",
            "京ICP备12345号", "版权所有", "版权", "© Copyright 2024", "Copyright ©", "copyright (c)", "MENTIONS LÉGALES",
            "mentions légales", "ImPrEsSuM", "a", "",
        ]
        var scratch: [UInt8] = []
        for config in Self.lineConfigs {
            let cleaner = Cleaner(config: config)
            #expect(cleaner.phrasePrefixes != nil)
            for line in lines {
                var bytes = Array(line.utf8)
                bytes.withUnsafeMutableBufferPointer { b in
                    let u = UnsafeBufferPointer(b)
                    #expect(cleaner.isBoilerplate(u, scratch: &scratch) == cleaner.isBoilerplatePlain(u, scratch: &scratch), "\(line)")
                }
            }
        }
    }

    /// `SafetyFilter.wordHashes` as it was, appending to an array.
    static func plainWordHashes(_ text: String) -> [UInt64] {
        var out: [UInt64] = []
        var h = TextStats.fnvOffset
        var inWord = false
        for c in text.utf8 {
            let isWord = c >= 0x80 || c == 0x27 || (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A)
            if isWord {
                h = (h ^ UInt64(c >= 0x41 && c <= 0x5A ? c | 0x20 : c)) &* TextStats.fnvPrime
                inWord = true
            } else if inWord {
                out.append(h)
                h = TextStats.fnvOffset
                inWord = false
            }
        }
        if inWord { out.append(h) }
        return out
    }

    @Test func safetyWordHashesMatchThePlainLoop() {
        let texts = Self.texts + ["a", "a b", " a b c ", "a,b,c,d", String(repeating: "x ", count: 1000), String(repeating: "é.", count: 500), "It's"]
        for text in texts { #expect(SafetyFilter.wordHashes(text) == Self.plainWordHashes(text), "\(text.prefix(40))") }
    }

    /// Texts for the tokenisers: case mappings that change length, long tokens, scripts that are single tokens.
    static let tokenTexts =
        texts + [
            "İstanbul \u{212A}elvin ΑΘΗΝΑ Straße ǅemal", "a", "a b", "A,B;C", String(repeating: "y", count: 80) + " end of it all now",
            "x " + String(repeating: "中", count: 30) + " 한국어 ひらがな カタカナ",
            String(repeating: "Word ", count: 60), "ﬁne ﬂour ŉ ǰ ΐ", "\u{1D400}\u{1D401} math 𝐀𝐁 letters", "---", "  ",
        ]

    @Test func scalarBitmapsMatchTheUnicodeProperties() {
        for v in UInt32(0)..<0x11_0000 {
            let s = Unicode.Scalar(v)
            #expect(MinHasher.unchangedWhenLowercased.contains(v) == (s.map { !$0.properties.changesWhenLowercased } ?? false))
            #expect(LanguageTagger.alphabeticScalars.contains(v) == (s?.properties.isAlphabetic ?? false))
        }
    }

    @Test func textStatsASCIIPathMatchesTheScalarSteps() {
        let table = LanguageTagger.StopWordTable([Set(["the", "and", "of", "的", "是"].map(TextStats.wordHash))])
        for text in Self.tokenTexts + [
            "#hash tag ... . .. ...\u{0B}\u{0C}\u{7F}\u{01}x", "a#b #c # ##", "a.\nab!\nabc?\n..\n...\nx …\n#a ## a#", "é.. x\u{01}y z…",
            "a", "ab", "abc", ".", "..", "x\u{0B}y", "end with punct!!", "中文abc.中", "1 2 3 four five.",
        ] {
            for chinese in [false, true] {
                let fast = TextStats(text, chinese: chinese, stopWords: table)
                let plain = TextStats(text, chinese: chinese, stopWords: table, asciiFastPath: false)
                #expect(fast.lines == plain.lines, "\(text.prefix(30))")
                #expect(fast.paragraphs.map(\.hash) == plain.paragraphs.map(\.hash) && fast.paragraphs.map(\.chars) == plain.paragraphs.map(\.chars))
                #expect(fast.wordHashes == plain.wordHashes && fast.wordLengths == plain.wordLengths)
                let counts = [fast.words, fast.alphaWords, fast.symbolTokens, fast.stopWordHits, fast.hanChars, fast.chars, fast.nonPrintable, fast.wordChars]
                let plainCounts = [
                    plain.words, plain.alphaWords, plain.symbolTokens, plain.stopWordHits, plain.hanChars, plain.chars, plain.nonPrintable,
                    plain.wordChars,
                ]
                #expect(counts == plainCounts, "\(text.prefix(30)), chinese \(chinese)")
            }
        }
    }

    /// datasketch's shingles built the plain way: the text lower-cased scalar by scalar, split into tokens,
    /// each shingle joined by spaces and hashed on its own.
    static func plainDatasketchHashes(_ text: String, ngram: Int) -> (tokens: [UInt64], hashes: [UInt32]) {
        var lower = String.UnicodeScalarView()
        for s in text.unicodeScalars { lower.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars) }
        var words: [String] = []
        var current = ""
        for s in lower {
            let v = s.value
            if v >= 0x3040 && (LanguageTagger.isHan(v) || v <= 0x30FF || (v >= 0xAC00 && v <= 0xD7AF)) {
                if !current.isEmpty { words.append(current) }
                words.append(String(s))
                current = ""
            } else if MinHasher.isWordScalar(v) {
                current.unicodeScalars.append(s)
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        let tokens = words.map { w in w.utf8.reduce(TextStats.fnvOffset) { ($0 ^ UInt64($1)) &* TextStats.fnvPrime } }
        guard !words.isEmpty else { return (tokens, []) }
        let g = min(ngram, words.count)
        let hashes = (0...(words.count - g)).map { s in
            MinHasher.fmix32(MinHasher.sha1Hash32(Array(words[s..<(s + g)].joined(separator: " ").utf8)))
        }
        return (tokens, hashes)
    }

    @Test func datasketchHashesMatchThePlainJoin() {
        for ngram in [1, 3, 5] {
            let hasher = MinHasher(numPerm: 16, ngram: ngram, scheme: .datasketch)
            var tokens: [UInt64] = [], hashes: [UInt32] = []
            for text in Self.tokenTexts {
                hasher.datasketchHashes(text, tokens: &tokens, into: &hashes)
                let plain = Self.plainDatasketchHashes(text, ngram: ngram)
                #expect(tokens == plain.tokens, "\(text.prefix(30))")
                #expect(hashes == plain.hashes, "\(text.prefix(30)), ngram \(ngram)")
            }
        }
    }

    @Test func loremIpsumSearchMatchesThePlainOne() {
        let cleaner = Cleaner(config: CleanConfig())
        var texts = Self.texts + ["lorem ipsum", "LOREM IPSUM", "Lorem Ipsum", "lorem  ipsum", "lorem ipsu", "orem ipsum", "lorem-ipsum"]
        for pad in 0..<20 {
            let filler = String(repeating: "ps lp ", count: pad / 3) + String(repeating: "x", count: pad)
            texts += [filler + "lorem ipsum", "lorem ipsum" + filler, filler + "Lorem ipsum dolor" + filler, filler + "lorem ipsun" + filler]
        }
        for text in texts {
            let plain = String(decoding: text.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self).contains("lorem ipsum")
            #expect(cleaner.containsLoremIpsum(text) == plain, "\(text.prefix(40))")
        }
    }
}
