// Byte-exact line input and JSON output helpers shared by the JSON Lines commands. `readLine()` is not
// used because it silently replaces invalid UTF-8, and this tool reports it instead.
import Foundation

/// Reads newline-separated lines as raw bytes from a file descriptor (stdin by default).
struct ByteLineReader {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEOF = false
    private(set) var lineNumber = 0

    init(handle: FileHandle = .standardInput) {
        self.handle = handle
    }

    /// The next line without its `\n` (and a trailing `\r`), or nil at the end of input.
    mutating func next() -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                var line = Array(buffer[start..<newline])
                start = newline + 1
                if line.last == 0x0D { line.removeLast() }
                lineNumber += 1
                return line
            }
            if atEOF {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                lineNumber += 1
                return line
            }
            buffer.removeFirst(start)
            start = 0
            let chunk = handle.readData(ofLength: 1 << 16)
            if chunk.isEmpty { atEOF = true } else { buffer.append(contentsOf: chunk) }
        }
    }
}

/// Writes to stdout through one buffered sink, flushed at the end or on demand.
final class StandardOutput {
    private var buffer: [UInt8] = []
    func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count > 1 << 16 { flush() }
    }
    func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

enum JSONText {
    /// A JSON string literal for `s` (RFC 8259 escaping; non-ASCII kept as UTF-8).
    static func quoted(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func intArray<T: BinaryInteger>(_ values: [T]) -> String {
        "[" + values.map { String($0) }.joined(separator: ", ") + "]"
    }
}
