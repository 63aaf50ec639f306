import Foundation
import Testing

@testable import InternData

/// Every rule on a crafted document that it must remove, next to the untouched base text that it keeps.
@Suite("Clean stage rules")
struct CleanRuleTests {
    let cleaner = Cleaner()

    func rule(_ text: String, lang: String = "", config: CleanConfig = CleanConfig()) -> String? {
        Cleaner(config: config).failingRule(Document(id: "t", text: text, lang: lang))
    }

    var base: [String] { DataFixtures.englishLines }

    @Test func baseTextsPass() {
        #expect(rule(DataFixtures.english) == nil)
        #expect(rule(DataFixtures.chinese) == nil)
        // Gopher's English rules would drop the Chinese text: it has fewer than 50 whitespace words.
        #expect(DataFixtures.chinese.split(whereSeparator: \.isWhitespace).count < 50)
    }

    @Test func lengthRules() {
        #expect(rule("Too short to be a document, with the words and that.") == "min_words")
        var c = CleanConfig()
        c.maxWords = 100
        #expect(rule(DataFixtures.english, config: c) == "max_words")
        #expect(rule("", lang: "en") == "empty")
        #expect(rule(String(DataFixtures.chinese.prefix(60)), lang: "zh") == "min_words")
    }

    @Test func meanWordLength() {
        let long = (0..<60).map { "internationalization\($0)characterisation" }.joined(separator: " ") + " the and."
        #expect(rule(long, lang: "en") == "mean_word_length")
    }

    @Test func symbolRatio() {
        let tags = (0..<20).map { "#tag\($0)" }.joined(separator: " ")
        #expect(rule(DataFixtures.english + "\n" + tags + ".") == "symbol_ratio")
    }

    @Test func bulletAndEllipsisLines() {
        #expect(rule(base.map { "• " + $0 }.joined(separator: "\n")) == "bullet_lines")
        #expect(rule(base.map { String($0.dropLast()) + "..." }.joined(separator: "\n")) == "ellipsis_lines")
    }

    @Test func alphaWords() {
        let numbers = (0..<60).map { String(1000 + $0 * 7) }.joined(separator: " ")
        #expect(rule(DataFixtures.english + "\n" + numbers + ".") == "alpha_words")
    }

    @Test func stopWords() {
        let noStop = [
            "Cats chase mice quickly around gardens during summer nights.",
            "Dogs bark loudly whenever strangers approach wooden gates.",
            "Farmers harvest golden wheat before autumn storms arrive.",
            "Bakers knead dough early, shaping loaves for hungry customers.",
            "Sailors repair torn nets after long voyages across cold seas.",
            "Teachers grade essays late into quiet winter evenings.",
            "Musicians rehearse new songs inside crowded basement studios.",
            "Gardeners plant tulips along narrow paths near stone walls.",
        ].joined(separator: "\n")
        #expect(rule(noStop, lang: "en") == "stop_words")
        let zhNoStop =
            String(repeating: "春天花园鲜花盛开，蜜蜂飞舞，阳光温暖，微风轻拂。\n", count: 1)
            + "城市街道车辆穿行，商店明亮，行人匆忙，夜晚灯火辉煌。\n"
            + "山区村庄空气清新，溪水潺潺，农民耕种，收获丰富粮食。\n"
            + "海边沙滩游客漫步，海浪拍岸，渔船归港，夕阳染红天空。\n"
            + "图书馆里学生安静读书，老师认真备课，窗外树叶随风摇动。"
        #expect(rule(zhNoStop, lang: "zh") == "stop_words")
    }

    @Test func duplicateLinesAndParagraphs() {
        #expect(rule((base + Array(repeating: base[0], count: 5)).joined(separator: "\n")) == "dup_lines")
        let a = base[0]
        let paragraphs = [a, base[1...6].joined(separator: "\n"), a, a].joined(separator: "\n\n")
        #expect(rule(paragraphs) == "dup_paragraphs")
        let longLine =
            "Across the valley, farmers who had planted barley in the spring now watched anxiously as the clouds gathered, "
            + "wondering whether the harvest would survive another week of heavy rain, since the granaries were nearly empty "
            + "and the merchants from the coast had already raised their prices twice this season alone."
        #expect(rule((base + [longLine, longLine]).joined(separator: "\n")) == "dup_line_chars")
        var c = CleanConfig()
        c.maxDupLineCharFraction = 1
        c.maxDupNgramFractionDisabled()
        let doc = [longLine, base[0], base[1], base[2], base[3], longLine].joined(separator: "\n\n")
        #expect(rule(doc, config: c) == "dup_paragraph_chars")
    }

    @Test func topNgramRepetition() {
        let words = [
            "river", "market", "window", "garden", "silver", "morning", "harbour", "letter", "bridge", "winter",
            "candle", "forest", "meadow", "thunder", "village", "lantern",
        ]
        let lines = (0..<8).map { k in
            "the green apple " + (0..<4).map { j in words[(k * 4 + j) % words.count] + "\(k)\(j) green apple" }.joined(separator: " ") + " and more."
        }
        #expect(rule(lines.joined(separator: "\n")) == "top_ngram")
    }

    @Test func duplicatedNgramRepetition() {
        let span = "the quiet library on the hill opens its heavy doors every single morning"
        let doc = base + ["\(span) for students.", "Yesterday \(span) as usual.", "Surely \(span) again tomorrow."]
        #expect(rule(doc.joined(separator: "\n")) == "dup_ngram")
    }

    @Test func linePunctuationShortAndListLines() {
        #expect(rule(base.map { String($0.dropLast()) }.joined(separator: "\n")) == "line_punctuation")
        let short = (0..<24).map { "Quiet\($0) harbours\($0) wait." }
        #expect(rule((base + short).joined(separator: "\n")) == "short_lines")
        var c = CleanConfig()
        c.minStopWords = 0
        c.maxShortLineRatio = 1
        let list = (0..<60).map { "Red\($0) hills\($0) shine\($0)." }
        #expect(rule(list.joined(separator: "\n"), lang: "en", config: c) == "list_lines")
    }

    @Test func nonPrintableAndLoremIpsum() {
        #expect(rule(DataFixtures.english + String(repeating: "\u{7}", count: 20)) == "non_printable")
        #expect(cleaner.clean(Document(id: "x", text: DataFixtures.english + "\nLorem ipsum dolor sit amet.")) == .remove(rule: "lorem_ipsum"))
    }

    @Test func boilerplateAndNonSentenceLinesAreStripped() {
        let page = ["Home", "News", "We use cookies to improve your experience.", DataFixtures.english, "© 2024 Example Inc. All rights reserved."]
            .joined(separator: "\n")
        guard case let .keep(doc, dropped, filtered) = cleaner.clean(Document(id: "p", text: page)) else {
            Issue.record("the page should be kept")
            return
        }
        #expect(doc.text == DataFixtures.english)
        #expect(dropped == 2 && filtered == 2)
        let zhPage = (["首页", "新闻", "登录", "版权所有 © 2019"] + DataFixtures.chineseLines + ["返回顶部"]).joined(separator: "\n")
        guard case let .keep(zh, _, _) = cleaner.clean(Document(id: "z", text: zhPage)) else {
            Issue.record("the Chinese page should be kept")
            return
        }
        #expect(zh.text == DataFixtures.chinese)
        #expect(zh.lang == "zh")
    }

    @Test func configFileOverridesAndRejectsUnknownKeys() throws {
        let dir = DataFixtures.scratchDirectory()
        let good = dir + "/c.json", bad = dir + "/bad.json"
        DataFixtures.write(#"{"min_words": 10, "zh_min_chars": 20, "c4_line_filter": false}"#, to: good)
        DataFixtures.write(#"{"min_wrods": 10}"#, to: bad)
        let c = try CleanConfig.load(path: good)
        #expect(c.minWords == 10 && c.zhMinChars == 20 && !c.c4LineFilter && c.maxWords == 100_000)
        #expect {
            _ = try CleanConfig.load(path: bad)
        } throws: { e in
            guard case let .config(file, key, _) = e as? DatasetError else { return false }
            return file == bad && key == "min_wrods"
        }
    }

    @Test func normalisationIsSeparateAndOptional() {
        let raw = "Cafe\u{301} &amp; bar\u{200B}\t\t here  \n\n\n\nnext   line  "
        #expect(TextNormalizer.normalize(raw) == "Café & bar here\n\nnext line")
        var c = CleanConfig()
        c.c4LineFilter = false
        c.minWords = 1
        c.minStopWords = 0
        c.minLinePunctuationRatio = 0
        c.maxShortLineRatio = 1
        c.maxLinesPerWord = 10
        if case let .keep(doc, _, _) = Cleaner(config: c).clean(Document(id: "n", text: raw, lang: "en")) {
            #expect(doc.text == raw)
        } else {
            Issue.record("kept without normalisation")
        }
        c.normalize = true
        if case let .keep(doc, _, _) = Cleaner(config: c).clean(Document(id: "n", text: raw, lang: "en")) {
            #expect(doc.text == "Café & bar here\n\nnext line")
        } else {
            Issue.record("kept with normalisation")
        }
    }
}

extension CleanConfig {
    mutating func maxDupNgramFractionDisabled() {
        dupNgramMaxFraction = dupNgramMaxFraction.map { _ in 1 }
        topNgramMaxFraction = topNgramMaxFraction.map { _ in 1 }
    }

    /// The shared n-gram pass the cleaner uses against the per-n reference measures, on word sequences with
    /// planted repeats, for the English sizes (2-4 then 5-10) and the doubled Chinese ones.
    @Test func ngramRepetitionEqualsReference() {
        var rng = SplitMix64(seed: 11)
        for trial in 0..<40 {
            // Small vocabularies repeat everywhere; large ones only where a passage is planted twice.
            let vocabulary = trial % 2 == 0 ? 3 + Int(rng.next() % 40) : 5000
            var words = (0..<(5 + Int(rng.next() % 300))).map { _ in "w\(rng.next() % UInt64(vocabulary))" }
            if trial % 3 == 0 { words += Array(words.prefix(30)) }
            let stats = TextStats(words.joined(separator: " "), chinese: false, stopWords: Set<UInt64>())
            for scale in [1, 2] {
                var shared = NgramRepetition(stats)
                for n in 2...4 {
                    #expect(shared.topCharFraction(n * scale) == stats.topNgramCharFraction(n * scale), "trial \(trial), n \(n * scale)")
                }
                for n in 5...10 {
                    #expect(
                        shared.duplicateCharFraction(n * scale) == stats.duplicateNgramCharFraction(n * scale), "trial \(trial), n \(n * scale)")
                }
                #expect(shared.topCharFraction(2) == stats.topNgramCharFraction(2))  // going back to a smaller n
            }
        }
    }

    @Test func punctuationAndBulletSwitchesEqualTheirSets() {
        let differing = (UInt32(0)...0x10000).filter { v in
            TextStats.isLatinPunctuationEnd(v) != TextStats.latinPunctuationEnd.contains(v)
                || TextStats.isChinesePunctuationEnd(v) != TextStats.chinesePunctuationEnd.contains(v)
                || TextStats.isBulletStart(v) != TextStats.bulletStarts.contains(v)
        }
        #expect(differing.isEmpty, "\(differing.prefix(5))")
    }
}
