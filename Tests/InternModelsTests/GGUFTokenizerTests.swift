// The tokenizer a GGUF file carries, against llama.cpp's tokenization of the same vocabulary
// (Tests/Fixtures/gguf/smollm2_cases.jsonl, made by scripts/fixtures/make_gguf_tokenizer_cases.py).
import Foundation
import InternCore
import InternModels
import InternTokenizer
import Testing

private let ggufFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/gguf")

private struct GGUFCase: Decodable {
    var text: String
    var ids: [TokenID]
    var ids_special: [TokenID]
    var decoded: String
    var category: String
}

@Suite struct GGUFTokenizerTests {
    static let tokenizer: any Tokenizer = try! GGUFTokenizer.load(
        from: GGUFFile(path: ggufFixtures.appendingPathComponent("smollm2-vocab.gguf").path))

    private static func cases() throws -> [GGUFCase] {
        let data = try Data(contentsOf: ggufFixtures.appendingPathComponent("smollm2_cases.jsonl"))
        return try data.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(GGUFCase.self, from: Data($0)) }
    }

    private static func show(_ ids: [TokenID]) -> String {
        ids.prefix(40).map { "\($0):\(String(reflecting: tokenizer.piece(for: $0) ?? "?"))" }.joined(separator: " ")
    }

    @Test func idsMatchLlamaCpp() throws {
        let tok = Self.tokenizer
        #expect(tok is ByteLevelBPETokenizer)
        let cases = try Self.cases()
        #expect(cases.count == 585)
        var mismatches = 0
        for c in cases {
            let plain = tok.encode(c.text, addBOS: false, parseSpecialTokens: false)
            let special = tok.encode(c.text, addBOS: false, parseSpecialTokens: true)
            if plain != c.ids || special != c.ids_special {
                mismatches += 1
                if mismatches <= 10 {
                    Issue.record(
                        "[\(c.category)] \(String(reflecting: String(c.text.prefix(120))))\n expected \(Self.show(c.ids))\n got      \(Self.show(plain))")
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func decodeMatchesLlamaCpp() throws {
        var lossless = 0
        for c in try Self.cases() {
            // llama.cpp drops bytes the vocabulary has no token for (some C0 controls); we decode the same.
            #expect(try Self.tokenizer.decode(c.ids) == c.decoded, "\(String(reflecting: String(c.text.prefix(80))))")
            if c.decoded == c.text {
                lossless += 1
                #expect(try Self.tokenizer.decode(c.ids_special, rendering: .names) == c.text)
            }
        }
        #expect(lossless > 560)
    }

    @Test func specialTokensAndFlags() {
        let tok = Self.tokenizer
        #expect(tok.specialTokenID("<|im_start|>") == 1)
        #expect(tok.specialTokenID("<|im_end|>") == 2)
        #expect(tok.bosTokenID == 1 && tok.eosTokenID == 2)
        // SmolLM2's GGUF says add_bos_token = false.
        #expect(tok.encode("hi", addBOS: true, parseSpecialTokens: false) == tok.encode("hi"))
    }
}
