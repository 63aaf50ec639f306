import Foundation
import Testing

@testable import InternData

@Suite("Safety stage: blocklists, word lists, PII masking")
struct SafetyTests {
    @Test func masksPIIWithCounts() {
        let text = """
            Write to jane.doe+news@example.co.uk or call +1 (555) 123-4567, or 138 0013 8000 in Beijing: 13800138000.
            ID 11010519491231002X, server 192.168.1.254, version 1.2.3 and 2019-09-05 11:10 stay; ISBN 978-3-16-148410-0 too.
            """
        let (masked, counts) = PIIMasker.mask(text)
        #expect(
            masked == """
                Write to <EMAIL> or call <PHONE>, or <PHONE> in Beijing: <PHONE>.
                ID <ID_NUMBER>, server <IP>, version 1.2.3 and 2019-09-05 11:10 stay; ISBN 978-3-16-148410-0 too.
                """)
        #expect(counts == ["email": 1, "phone": 3, "id_number": 1, "ip": 1])
    }

    @Test func chineseIDChecksum() {
        #expect(PIIMasker.isChineseID(Array("11010519491231002X".utf8)))
        #expect(PIIMasker.isChineseID(Array("110105194912310021".utf8)) == false)  // wrong check digit
        #expect(PIIMasker.isChineseID(Array("11010519491331002X".utf8)) == false)  // month 13
        let (masked, counts) = PIIMasker.mask("订单号110105194912310021不是身份证")
        #expect(masked == "订单号110105194912310021不是身份证" && counts["id_number"] == 0)
        #expect(PIIMasker.mask("版本 256.1.1.1 与 10.0.0.1.5").1["ip"] == 0)
    }

    func filter(_ config: SafetyConfig = SafetyConfig()) throws -> SafetyFilter {
        var c = config
        c.wordListFiles = [DataFixtures.asset("safety/ldnoobw/en"), DataFixtures.asset("safety/ldnoobw/zh")]
        return try SafetyFilter(config: c)
    }

    @Test func blocksDomainsAndURLs() throws {
        var c = SafetyConfig()
        c.blockedDomains = ["bad.example"]
        c.blockedUrlSubstrings = ["/casino/"]
        let f = try filter(c)
        func rule(_ url: String) -> String? {
            if case let .remove(rule) = f.apply(Document(id: "u", text: "fine text", lang: "en", url: url)) { return rule }
            return nil
        }
        #expect(rule("https://www.bad.example/page") == "domain_blocklist")
        #expect(rule("http://bad.example") == "domain_blocklist")
        #expect(rule("https://notbad.example/") == nil)
        #expect(rule("https://good.example/casino/win") == "url_blocklist")
        #expect(rule("") == nil)
    }

    @Test func badWordsMatchWholeEnglishWordsAndChineseSubstrings() throws {
        let f = try filter()
        #expect(f.badWordHits("Essex and Sussex are counties; class assessments.", chinese: false) == 0)
        #expect(f.badWordHits("What the shit, shit happens. Shit!", chinese: false) == 3)
        #expect(f.badWordHits("two girls one cup", chinese: false) == 1)  // a phrase entry
        // 乳 alone is skipped (it would match 乳业, dairy); 乳交 is a listed two-character entry.
        #expect(f.badWordHits("伊利乳业发布年报", chinese: true) == 0)
        #expect(f.badWordHits("乳交乳交乳交", chinese: true) == 3)
        let keep = f.apply(Document(id: "a", text: "A health page that says sexual once.", lang: "en"))
        guard case .keep = keep else { Issue.record("one occurrence is below the limit"); return }
        let remove = f.apply(Document(id: "b", text: "porn porn porn site", lang: "en"))
        guard case .remove(rule: "bad_words") = remove else { Issue.record("three occurrences remove the page"); return }
    }

    @Test func defaultWordListsAreFound() throws {
        let lists = try SafetyFilter.defaultWordLists()
        #expect(lists.count == 2 && lists.allSatisfy { FileManager.default.fileExists(atPath: $0) })
    }
}

@Suite("Quality stage: hashed n-gram logistic regression")
struct QualityTests {
    static let good = DataFixtures.englishLines + DataFixtures.chineseLines
    static let bad = [
        "Home\nNews\nSports\nLogin\nRegister", "Menu\nShop\nCart\nCheckout\nHelp", "首页\n新闻\n体育\n登录\n注册",
        "Contact\nAbout us\nCareers\nPress\nSitemap", "导航\n财经\n科技\n汽车\n房产", "Next\nPrevious\nPage 1 2 3 4\nMore",
    ]

    @Test func learnsToSeparateProseFromMenus() {
        let model = QualityModel.train(positives: Self.good, negatives: Self.bad, bits: 14, epochs: 30)
        for t in Self.good { #expect(model.score(t) > 0.5, "\(t)") }
        for t in Self.bad { #expect(model.score(t) < 0.5, "\(t)") }
        // Unseen texts of either kind.
        #expect(model.score("The harbour museum keeps old letters from sailors, and visitors read them in the afternoon.") > 0.5)
        #expect(model.score("Login\nRegister\nHome\nSitemap") < 0.5)
    }

    @Test func modelFileRoundTripsAndRejectsGarbage() throws {
        let dir = DataFixtures.scratchDirectory()
        var model = QualityModel(bits: 10)
        model.weights[3] = 1.5
        model.bias = -0.25
        try model.write(to: dir + "/m.ikqm")
        #expect(try QualityModel.load(path: dir + "/m.ikqm") == model)
        DataFixtures.write("not a model", to: dir + "/bad.ikqm")
        #expect(throws: DatasetError.self) { try QualityModel.load(path: dir + "/bad.ikqm") }
    }

    @Test func filterRecordsScoreAndRemovesLowScores() {
        let model = QualityModel.train(positives: Self.good, negatives: Self.bad, bits: 14, epochs: 30)
        let f = QualityFilter(model: model, threshold: 0.5)
        guard case let .keep(doc, _) = f.apply(Document(id: "g", text: DataFixtures.english)) else {
            Issue.record("prose should be kept")
            return
        }
        #expect(doc.meta.hasPrefix(#"{"quality_score": 0."#))
        guard case .remove(rule: "low_score") = f.apply(Document(id: "b", text: "Home\nLogin\nShop\nCart")) else {
            Issue.record("a menu should be removed")
            return
        }
    }
}
