// Id-for-id conformance with the `sentencepiece` library and HF's InternLM2Tokenizer, on the
// fixtures in Tests/Fixtures/tokenizer (see their README for how they were made).
import Foundation
import InternTokenizer
import Testing

let internLM2Tokenizer: SentencePieceTokenizer = {
    try! SentencePieceTokenizer(contentsOf: FixturePaths.internLM2TokenizerModel)
}()

/// Shows ids as pieces so a failing case can be read.
func describe(_ ids: [TokenID], _ tokenizer: some Tokenizer) -> String {
    ids.map { "\($0):\(tokenizer.piece(for: $0).map { String(reflecting: $0) } ?? "?")" }.joined(separator: " ")
}

struct PlainCase: Decodable {
    var text: String
    var ids: [TokenID]
    var category: String
    var roundtrip: Bool
}

struct ChatCase: Decodable {
    var text: String
    var ids: [TokenID]
    var ids_add_bos: [TokenID]
}

@Suite struct SentencePieceConformanceTests {
    @Test func plainCasesMatchSentencePiece() throws {
        let cases = try FixturePaths.jsonLines(FixturePaths.tokenizerFixture("internlm2_cases.jsonl"), as: PlainCase.self)
        #expect(cases.count == 234)
        for c in cases {
            let text = c.text
            let expected = c.ids
            let got = internLM2Tokenizer.encode(text)
            #expect(
                got == expected,
                "text \(String(reflecting: text))\n expected \(describe(expected, internLM2Tokenizer))\n got      \(describe(got, internLM2Tokenizer))")
            if c.roundtrip {
                #expect(try internLM2Tokenizer.decode(got) == text)
            }
        }
    }

    @Test func chatCasesMatchHFInternLM2Tokenizer() throws {
        let cases = try FixturePaths.jsonLines(FixturePaths.tokenizerFixture("internlm2_chat_cases.jsonl"), as: ChatCase.self)
        #expect(cases.count == 30)
        for c in cases {
            let text = c.text
            let expected = c.ids
            let got = internLM2Tokenizer.encode(text, addBOS: false, parseSpecialTokens: true)
            #expect(
                got == expected,
                "text \(String(reflecting: text))\n expected \(describe(expected, internLM2Tokenizer))\n got      \(describe(got, internLM2Tokenizer))")
            let expectedBOS = c.ids_add_bos
            #expect(internLM2Tokenizer.encode(text, addBOS: true, parseSpecialTokens: true) == expectedBOS)
        }
    }
}
