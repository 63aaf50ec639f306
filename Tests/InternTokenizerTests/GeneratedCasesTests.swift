// Cases generated with the `sentencepiece` library by scripts/fixtures/make_tokenizer_extra_cases.py:
// random Unicode, pathological repeats, real text snippets, and four ~1 MB texts rebuilt from a
// recipe and checked by id count, first/last ids and an FNV-1a checksum (Tests/Fixtures/tokenizer/EXTRA_CASES.md).
import Foundation
import InternTokenizer
import Testing

struct ExtraCase: Decodable {
    var text: String
    var ids: [TokenID]
    var category: String
    var roundtrip: Bool
    var source: String?
}

struct LongCases: Decodable {
    struct Source: Decodable {
        var file: String
        var categories: [String]?
        var sources: [String]?
    }
    struct Case: Decodable {
        var name: String
        var sources: [Source]
        var target_bytes: Int
        var utf8_bytes: Int
        var num_ids: Int
        var first_ids: [TokenID]
        var last_ids: [TokenID]
        var ids_fnv1a: String
        var roundtrip: Bool
    }
    var cases: [Case]
}

@Suite struct GeneratedCasesTests {
    @Test func extraCasesMatchSentencePiece() throws {
        let cases = try FixturePaths.jsonLines(FixturePaths.tokenizerFixture("internlm2_extra_cases.jsonl"), as: ExtraCase.self)
        #expect(cases.count == 305)
        for c in cases {
            let got = internLM2Tokenizer.encode(c.text)
            if got != c.ids {
                Issue.record(
                    "[\(c.category)] text \(String(reflecting: c.text.prefix(200)))\n expected \(describe(Array(c.ids.prefix(60)), internLM2Tokenizer))\n got      \(describe(Array(got.prefix(60)), internLM2Tokenizer))"
                )
            }
            if c.roundtrip { #expect(try internLM2Tokenizer.decode(got) == c.text) }
        }
    }

    @Test func oneMegabyteInputsMatchSentencePiece() throws {
        let spec = try JSONDecoder().decode(
            LongCases.self, from: Data(contentsOf: FixturePaths.tokenizerFixture("internlm2_long_cases.json")))
        #expect(spec.cases.count == 4)
        for c in spec.cases {
            // Rebuild the text exactly as the generator's recipe_rule says, counting UTF-8 bytes.
            var selected: [String] = []
            for source in c.sources {
                let url = FixturePaths.repositoryRoot.appendingPathComponent(source.file)
                for item in try FixturePaths.jsonLines(url, as: ExtraCase.self)
                where (source.categories.map { $0.contains(item.category) } ?? true)
                    && (source.sources.map { s in item.source.map { s.contains($0) } ?? false } ?? true)
                {
                    selected.append(item.text)
                }
            }
            var text: [UInt8] = []
            var i = 0
            while text.count < c.target_bytes {
                if i > 0 { text.append(0x0A) }
                text += Array(selected[i % selected.count].utf8)
                i += 1
            }
            #expect(text.count == c.utf8_bytes)
            let string = String(decoding: text, as: UTF8.self)
            let ids = internLM2Tokenizer.encode(string)
            var checksum = TokenIDChecksum()
            checksum.combine(ids)
            #expect(ids.count == c.num_ids, "\(c.name)")
            #expect(Array(ids.prefix(c.first_ids.count)) == c.first_ids, "\(c.name)")
            #expect(Array(ids.suffix(c.last_ids.count)) == c.last_ids, "\(c.name)")
            #expect(checksum.hex == c.ids_fnv1a, "\(c.name)")
            if c.roundtrip { #expect(try internLM2Tokenizer.decode(ids) == string) }
        }
    }
}
