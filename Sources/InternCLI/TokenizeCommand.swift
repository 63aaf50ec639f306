// `intern tokenize`: text to ids and back, one JSON object a line, or one text for a human to read.
import ArgumentParser
import Foundation
import InternTokenizer

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text to token ids or decode ids to text.",
        discussion: """
            With --jsonl, reads {"text": "..."} lines on stdin and writes {"ids": [...]} lines; with --decode,
            reads {"ids": [...]} and writes {"text": "..."}. Without --bos and --special the ids equal
            sentencepiece's plain encode(text).
            """
    )

    @OptionGroup var source: TokenizerOptions

    @Flag(help: "Read JSON Lines on stdin and write JSON Lines on stdout.")
    var jsonl = false

    @Flag(help: "Decode {\"ids\": [...]} lines instead of encoding.")
    var decode = false

    @Flag(help: "Prepend the BOS id (1).")
    var bos = false

    @Flag(help: "Turn special-token names (<|im_start|>, <s>, ...) into their ids; in decoding, show them by name.")
    var special = false

    @Argument(help: "Text to encode (without --jsonl). Prints ids and pieces.")
    var text: String?

    func run() throws {
        let tokenizer = try source.load()
        let out = StandardOutput()
        defer { out.flush() }
        guard jsonl else {
            guard let text else { throw ValidationError("give a text to encode, or --jsonl to read JSON Lines on stdin") }
            let ids = tokenizer.encode(text, addBOS: bos, parseSpecialTokens: special)
            out.write(JSONText.intArray(ids) + "\n")
            for id in ids { out.write("\(id)\t\(String(reflecting: tokenizer.displayPiece(for: id)))\n") }
            return
        }
        var reader = ByteLineReader()
        while let line = reader.next() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            do {
                if decode {
                    let ids = try Self.decodeLine(IDsLine.self, line).ids
                    let text = try tokenizer.decode(ids.map { TokenID(clamping: $0) }, rendering: special ? .names : .raw)
                    out.write("{\"text\": \(JSONText.quoted(text))}\n")
                } else {
                    let text = try Self.decodeLine(TextLine.self, line).text
                    out.write("{\"ids\": \(JSONText.intArray(tokenizer.encode(text, addBOS: bos, parseSpecialTokens: special)))}\n")
                }
            } catch {
                out.flush()
                throw ValidationError("stdin line \(reader.lineNumber): \(error)")
            }
        }
    }

    /// Decodes one JSON object line, with an error that says what is wrong. JSONDecoder, not
    /// JSONSerialization: the latter drops a U+FEFF at the start of a string value on Linux.
    static func decodeLine<T: Decodable>(_ type: T.Type, _ line: [UInt8]) throws -> T {
        guard String(validating: line, as: UTF8.self) != nil else { throw LineError("invalid UTF-8") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(line))
        } catch DecodingError.keyNotFound(let key, _) {
            throw LineError("missing field '\(key.stringValue)'")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined()
            throw LineError("field '\(path)' has the wrong type: \(context.debugDescription)")
        } catch {
            throw LineError("malformed JSON")
        }
    }
}

struct TextLine: Decodable { var text: String }
struct IDsLine: Decodable { var ids: [Int] }

struct LineError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
