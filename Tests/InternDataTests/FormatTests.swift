import Foundation
import Testing

@testable import InternData

@Suite("Format stage: HTML, charsets, WARC, CSV, language tags")
struct FormatTests {
    @Test func visibleTextDropsScriptsAndBreaksAtBlocks() {
        let html = """
            <!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style></head>
            <body><nav>Home</nav><script type="text/javascript">var a = "<p>no</p>";</script>
            <noscript>Enable JS</noscript><!-- comment <p>hidden</p> -->
            <h1>Title &amp; more</h1><p>First   paragraph with <b>bold</b>
            text&nbsp;and &#x4e2d;&#25991; &hellip;</p><ul><li>one</li><li>two</li></ul>
            <div data-x="a>b">after attribute</div>5 &lt; 6<br>x<svg><text>no</text></svg></body></html>
            """
        #expect(
            HTMLText.visibleText(html) == """
                Home
                Title & more
                First paragraph with bold text and 中文 …
                one
                two
                after attribute
                5 < 6
                x
                """)
    }

    @Test func headWithoutCloseTagStopsAtBody() {
        #expect(HTMLText.visibleText("<html><head><title>x</title><body><p>kept</p></body>") == "kept")
    }

    @Test func charsetComesFromHeaderOrMeta() {
        #expect(Charset.fromContentType("text/html; charset=GBK") == "gbk")
        #expect(Charset.fromContentType("text/html;charset=\"utf-8\"") == "utf-8")
        #expect(Charset.fromMeta(ArraySlice(#"<html><head><meta charset="gb2312"/>"#.utf8)) == "gb2312")
        #expect(Charset.fromMeta(ArraySlice(#"<meta http-equiv="Content-Type" content="text/html; charset=Big5">"#.utf8)) == "big5")
        let gbk: [UInt8] = [0xD6, 0xD0, 0xCE, 0xC4, 0xA1, 0xA3]  // 中文。 in GBK
        #expect(Charset.decode(gbk[...], charset: "gbk").text == "中文。")
        #expect(Charset.decode(gbk[...], charset: "GB2312").text == "中文。")
        // Undeclared, not UTF-8: Windows-1252.
        #expect(Charset.decode([0x63, 0x61, 0x66, 0xE9, 0x80][...], charset: nil).text == "café€")
    }

    @Test func gbkWARCPagesAreDecoded() throws {
        var f = DocumentFormatter()
        var docs: [Document] = []
        try f.read(path: DataFixtures.fixture("gbk.warc.gz")) { (d: Document) throws(DatasetError) in docs.append(d) }
        #expect(docs.count == 2)  // the 404 page is skipped
        #expect(f.recordsSkipped == 1)
        #expect(docs[0].text == "中文网页的正文。\n第二段&实体 测试")
        #expect(docs[0].url == "http://example.cn/a")
        #expect(docs[0].lang == "zh")
        #expect(docs[0].meta.contains(#""charset": "gb18030""#))
        #expect(docs[1].text == "简体中文页面，只在元标签里声明编码。")
    }

    @Test func realWARCRecordsGiveTheirPages() throws {
        var f = DocumentFormatter()
        var docs: [Document] = []
        try f.read(path: DataFixtures.fixture("sample.warc.gz")) { (d: Document) throws(DatasetError) in docs.append(d) }
        #expect(docs.count == 3)
        #expect(docs.allSatisfy { $0.url.hasPrefix("https://") && $0.lang == "en" && !$0.text.contains("<") })
        let luca = try #require(docs.first { $0.url == "https://soldaini.net/" })
        #expect(luca.text.hasPrefix("Luca Soldaini\nPublications / Facts\nDALL•E 2 generation (April 2022)\nHello, visitor!"))
        #expect(!luca.text.contains("bootstrap"))  // <head> links and scripts are gone
        #expect(f.bad.count == 0)
    }

    @Test func csvWithQuotedFieldsAndBadRows() throws {
        let dir = DataFixtures.scratchDirectory()
        let path = dir + "/t.csv"
        DataFixtures.write("id,body,topic\n1,\"Hello, \"\"world\"\"\nsecond line\",greet\n2,plain,misc\n3,too,many,fields\n", to: path)
        var options = FormatOptions()
        options.textField = "body"
        var f = DocumentFormatter(options: options)
        var docs: [Document] = []
        try f.read(path: path) { (d: Document) throws(DatasetError) in docs.append(d) }
        #expect(docs.map(\.text) == ["Hello, \"world\"\nsecond line", "plain"])
        #expect(docs[0].id == "1" && docs[0].meta == #"{"topic": "greet"}"#)
        #expect(f.bad.count == 1 && f.bad.examples[0] == "\(path):5: 4 columns, the header has 3")
    }

    @Test func jsonlWithAnotherTextFieldAndPlainText() throws {
        let dir = DataFixtures.scratchDirectory()
        let jsonl = dir + "/in.jsonl", txt = dir + "/essay.txt"
        DataFixtures.write(#"{"content": "\#(DataFixtures.english.replacingOccurrences(of: "\n", with: "\\n"))", "url": "u"}"#, to: jsonl)
        DataFixtures.write(DataFixtures.chinese, to: txt)
        var options = FormatOptions()
        options.textField = "content"
        var f = DocumentFormatter(options: options)
        var docs: [Document] = []
        for p in [jsonl, txt] { try f.read(path: p) { (d: Document) throws(DatasetError) in docs.append(d) } }
        #expect(docs.map(\.lang) == ["en", "zh"])
        #expect(docs.map(\.source) == ["in", "essay"])
        #expect(docs[0].id == "in:1" && docs[0].url == "u")
    }

    @Test func languageTags() {
        #expect(LanguageTagger.tag(DataFixtures.english) == "en")
        #expect(LanguageTagger.tag(DataFixtures.chinese) == "zh")
        #expect(LanguageTagger.tag("Der Hund und die Katze sind nicht im Haus, aber sie werden es auch finden.") == "de")
        #expect(LanguageTagger.tag("Le chat et le chien sont dans la maison avec les enfants pour la nuit.") == "fr")
        let code = """
            import Foundation
            func add(_ a: Int, _ b: Int) -> Int {
                let c = a + b;
                return c;
            }
            """
        #expect(LanguageTagger.tag(code) == "code")
        #expect(LanguageTagger.tag("") == "other")
    }

    @Test func realWebPagesAreTaggedByScript() throws {
        var f = DocumentFormatter()
        var docs: [Document] = []
        try f.read(path: DataFixtures.fixture("web_sample.jsonl.gz")) { (d: Document) throws(DatasetError) in docs.append(d) }
        #expect(docs.count == 9)
        #expect(docs.suffix(4).allSatisfy { $0.lang == "zh" })
        #expect(docs.prefix(5).allSatisfy { ["en", "de", "fr"].contains($0.lang) })
        #expect(docs.allSatisfy { $0.meta.contains("\"origin\"") && $0.source == "web_sample" })
    }
}
