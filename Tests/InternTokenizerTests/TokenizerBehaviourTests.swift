// Behaviour beyond the conformance fixtures: special-token splitting, decoding modes, the streaming
// detokenizer, and clear errors (never a crash) for bad model files and ids.
import Foundation
import InternTokenizer
import Testing

@Suite struct SpecialTokenTests {
    let tok = internLM2Tokenizer

    @Test func plainModeKeepsSpecialNamesAsText() {
        // sentencepiece's plain encode does not know HF's added-token names.
        #expect(tok.encode("<|im_start|>") == [333, 352, 449, 5064, 352, 330])
        #expect(tok.encode("<s>") == [43618, 330])
    }

    @Test func specialModeSplitsLeftmostLongestWithoutStrippingSpace() {
        #expect(
            tok.encode("<|im_start|>user\nhi<|im_end|>", addBOS: false, parseSpecialTokens: true)
                == [92543, 1008, 364, 6176, 92542])
        #expect(tok.encode(" <s> ", addBOS: false, parseSpecialTokens: true) == tok.encode(" ") + [1] + tok.encode(" "))
        #expect(tok.encode("<|im_end|><|im_end|>", addBOS: true, parseSpecialTokens: true) == [1, 92542, 92542])
        // A name cut short is ordinary text.
        #expect(tok.encode("<|im_end|", addBOS: false, parseSpecialTokens: true) == tok.encode("<|im_end|"))
    }

    @Test func specialTokenTableIsInternLM2s() {
        #expect(tok.specialTokenID("<|im_end|>") == 92542)
        #expect(tok.specialTokenID("<|plugin|>") == 92538)
        #expect(tok.bosTokenID == 1 && tok.eosTokenID == 2)
        #expect(tok.vocabularySize == 92544)
        #expect(tok.piece(for: 259) != nil && tok.piece(for: 92544) == nil && tok.piece(for: -1) == nil)
        #expect(tok.displayPiece(for: 92543) == "<|im_start|>")
    }
}

@Suite struct DecodeTests {
    let tok = internLM2Tokenizer

    @Test func invalidBytesBecomeOneReplacementEach() throws {
        // Expected strings from sentencepiece 0.2.1: sp.decode([3+0xE4, 3+0xBD]) etc.
        #expect(try tok.decode([3 + 0xE4, 3 + 0xBD]) == "\u{FFFD}\u{FFFD}")
        #expect(try tok.decode([3 + 0xE4, 3 + 0xBD, 3 + 0xA0]) == "你")
        #expect(try tok.decode([3 + 0xFF, 100, 3 + 0xE4]) == "\u{FFFD}a\u{FFFD}")
        #expect(try tok.decode([0, 1, 2, 5]) == " \u{2047} \u{02}")
    }

    @Test func renderingModes() throws {
        let ids: [TokenID] = [1, 92543, 1008, 364, 6176, 92542]
        #expect(try tok.decode(ids) == "[UNUSED_TOKEN_146]user\nhi[UNUSED_TOKEN_145]")
        #expect(try tok.decode(ids, rendering: .names) == "<s><|im_start|>user\nhi<|im_end|>")
        #expect(try tok.decode(ids, rendering: .skip) == "user\nhi")
    }

    @Test func outOfRangeIDsThrow() {
        #expect(throws: TokenizerError.idOutOfRange(id: 92544, vocabularySize: 92544)) { try tok.decode([5, 92544]) }
        #expect(throws: TokenizerError.idOutOfRange(id: -3, vocabularySize: 92544)) { try tok.decode([-3]) }
    }
}

@Suite struct StreamingDetokenizerTests {
    @Test func deltasConcatenateToDecodeAndNeverSplitACharacter() throws {
        let cases = try FixturePaths.jsonLines(FixturePaths.tokenizerFixture("internlm2_cases.jsonl"), as: PlainCase.self)
        for c in cases {
            var detok = StreamingDetokenizer(tokenizer: internLM2Tokenizer, rendering: .raw)
            var out = ""
            for id in c.ids {
                let delta = detok.append(id)
                #expect(!delta.contains("\u{FFFD}") || c.text.contains("\u{FFFD}"), "broken character in \(String(reflecting: c.text))")
                out += delta
            }
            out += detok.finish()
            #expect(out == (try internLM2Tokenizer.decode(c.ids)))
        }
    }

    @Test func byteFallbackCharacterIsHeldUntilComplete() {
        var detok = StreamingDetokenizer(tokenizer: internLM2Tokenizer)
        #expect(detok.append(3 + 0xF0) == "")
        #expect(detok.append(3 + 0xA0) == "")
        #expect(detok.append(3 + 0xAE) == "")
        #expect(detok.append(3 + 0xB7) == "𠮷")
        #expect(detok.append(3 + 0xE4) == "")
        #expect(detok.finish() == "\u{FFFD}")
    }

    @Test func invalidContinuationIsReleasedImmediately() {
        var detok = StreamingDetokenizer(tokenizer: internLM2Tokenizer)
        #expect(detok.append(3 + 0xE4) == "")
        #expect(detok.append(100) == "\u{FFFD}a")
    }
}

@Suite struct ModelFileErrorTests {
    static let modelBytes = try! [UInt8](Data(contentsOf: FixturePaths.internLM2TokenizerModel))

    @Test(arguments: [0, 1, 7, 100, 4096, 1_000_000, 1_477_000, 1_477_753])
    func truncatedModelThrows(length: Int) {
        let bytes = Array(Self.modelBytes[..<length])
        #expect(throws: TokenizerError.self) {
            _ = try SentencePieceTokenizer(model: SentencePieceModelFile(bytes: bytes, path: "cut.model"), path: "cut.model")
        }
    }

    @Test func foreignFilesThrowWithThePath() throws {
        let garbage = Array("{\"this\": \"is JSON, not protobuf\"}".utf8)
        do {
            _ = try SentencePieceModelFile(bytes: garbage, path: "tokenizer.json")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("tokenizer.json: not a valid SentencePiece model"))
        }
        let missing = URL(fileURLWithPath: "/nonexistent/tokenizer.model")
        #expect(throws: TokenizerError.self) { try SentencePieceTokenizer(contentsOf: missing) }
    }

    @Test func readsTheSpecs() throws {
        let file = try SentencePieceModelFile(bytes: Self.modelBytes)
        #expect(file.pieces.count == 92544)
        #expect(file.modelType == 2 && file.byteFallback)
        #expect(!file.addDummyPrefix && !file.removeExtraWhitespaces && file.escapeWhitespaces)
        #expect(file.normalizerName == "identity")
        #expect(file.types.filter { $0 == .byte }.count == 256)
        #expect(file.types.filter { $0 == .userDefined }.count == 192)
    }

    @Test func unsupportedModelTypesAreRejected() throws {
        var file = try SentencePieceModelFile(bytes: Self.modelBytes)
        file.modelType = 1
        #expect(throws: TokenizerError.unsupportedModel(path: "x", reason: "model_type UNIGRAM; only BPE is supported")) {
            try SentencePieceTokenizer(model: file, path: "x")
        }
    }
}
