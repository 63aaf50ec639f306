// The `intern tokenize` and `intern template` contracts that scripts depend on.
import Foundation
import Testing

@Suite struct TokenizeCommandTests {
    let model = CLIRunner.tokenizerModel

    @Test func jsonlEncodesLikeSentencePiece() throws {
        let input = """
            {"text": "Hello, world!"}
            {"text": "\\ufeffBOM at start"}
            {"text": "<|im_start|>user\\nhi<|im_end|>"}

            """
        let r = try CLIRunner.run(["tokenize", "--tokenizer", model, "--jsonl"], stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stdout == """
                {"ids": [9843, 328, 2028, 346]}
                {"ids": [65402, 309, 2048, 650, 1336]}
                {"ids": [333, 352, 449, 5064, 352, 330, 1008, 364, 6176, 333, 352, 449, 6368, 352, 330]}

                """)
    }

    @Test func bosAndSpecialFlags() throws {
        let r = try CLIRunner.run(
            ["tokenize", "--tokenizer", model, "--jsonl", "--bos", "--special"],
            stdin: "{\"text\": \"<|im_start|>user\\nhi<|im_end|>\"}\n")
        #expect(r.stdout == "{\"ids\": [1, 92543, 1008, 364, 6176, 92542]}\n")
    }

    @Test func decodeRoundTrips() throws {
        let r = try CLIRunner.run(
            ["tokenize", "--tokenizer", model, "--jsonl", "--decode"],
            stdin: "{\"ids\": [9843, 328, 2028, 346, 3, 364]}\n{\"ids\": [92542]}\n")
        #expect(r.stdout == "{\"text\": \"Hello, world!\\u0000\\n\"}\n{\"text\": \"[UNUSED_TOKEN_145]\"}\n")
        let named = try CLIRunner.run(["tokenize", "--tokenizer", model, "--jsonl", "--decode", "--special"], stdin: "{\"ids\": [1, 92542]}\n")
        #expect(named.stdout == "{\"text\": \"<s><|im_end|>\"}\n")
    }

    @Test func modelDirectoryReplacesTokenizer() throws {
        let r = try CLIRunner.run(["tokenize", "--model", CLIRunner.repositoryRoot.appendingPathComponent("Assets/internlm2").path, "hi"])
        #expect(r.status == 0 && r.stdout.hasPrefix("[6176]\n"))
    }

    @Test(arguments: [
        ("{\"text\": \"ok\"}\n{\"text\": 5}\n", "line 2: field 'text' has the wrong type"),
        ("{\"text\": \"ok\"}\n{\"txt\": \"x\"}\n", "line 2: missing field 'text'"),
        ("{\"text\": \"ok\"}\n\n{\"text\": \"unterminated}\n", "line 3: malformed JSON"),
        ("{\"text\": \"\u{FF}\"}\n", "line 1: invalid UTF-8"),
    ])
    func badLinesNameTheLine(input: String, message: String) throws {
        var stdin = Array(input.utf8)
        if input.contains("\u{FF}") {
            // A lone 0xFF byte, not the character U+00FF.
            stdin = Array("{\"text\": \"".utf8) + [0xFF] + Array("\"}\n".utf8)
        }
        let r = try CLIRunner.run(["tokenize", "--tokenizer", model, "--jsonl"], stdin: stdin)
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "stderr: \(r.stderr)")
    }

    @Test func missingModelFileIsReported() throws {
        let r = try CLIRunner.run(["tokenize", "--tokenizer", "/nonexistent/tokenizer.model", "x"])
        #expect(r.status != 0 && r.stderr.contains("/nonexistent/tokenizer.model: no such file"))
    }

    @Test func templateShowsPromptAndIDs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intern-template-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let messages = dir.appendingPathComponent("messages.json")
        try Data(#"[{"role": "user", "content": "hi"}]"#.utf8).write(to: messages)
        let r = try CLIRunner.run(["template", "--tokenizer", model, "--messages", messages.path, "--json"])
        #expect(
            r.stdout
                == "{\"text\": \"<s><|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n\", \"ids\": [1, 92543, 1008, 364, 6176, 92542, 364, 92543, 525, 11353, 364]}\n"
        )
        try Data(#"[{"role": "user", "content": "hi"},]"#.utf8).write(to: messages)
        let bad = try CLIRunner.run(["template", "--tokenizer", model, "--messages", messages.path])
        #expect(bad.status != 0 && bad.stderr.contains("messages.json: invalid JSON at byte"))
    }
}
