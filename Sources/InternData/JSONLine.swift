// A small, strict JSON reader for one JSON Lines record, and the JSON string writer. Top-level string
// values are decoded; every other value is kept as its raw JSON text (so `meta` objects pass through
// unchanged). Written by hand for speed and because Foundation's JSONSerialization on Linux drops a
// leading U+FEFF inside string values.

/// One value of a top-level JSON object: a decoded string or the raw text of anything else.
public enum JSONField: Sendable, Equatable {
    case string(String)
    case raw(String)

    /// The value as a string: decoded for strings, the raw JSON text for numbers, booleans and null.
    public var stringValue: String? {
        switch self {
        case let .string(s): return s
        case let .raw(r): return r == "null" ? nil : r
        }
    }
}

/// Why a line is not a usable JSON object.
public struct JSONLineError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// The 0-based offset in the line, or -1 when the error concerns the record as a whole.
    public let byteOffset: Int
    public var description: String { byteOffset < 0 ? message : "\(message) at byte \(byteOffset + 1)" }
}

public enum JSONLine {
    /// Parses one line holding a JSON object into its top-level fields, in order.
    public static func parseObject(_ bytes: ArraySlice<UInt8>) throws(JSONLineError) -> [(key: String, value: JSONField)] {
        try bytes.withUnsafeBufferPointer { (buf: UnsafeBufferPointer<UInt8>) throws(JSONLineError) in try parseObject(buf) }
    }

    public static func parseObject(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONLineError) -> [(key: String, value: JSONField)] {
        var parser = Parser(b: bytes)
        return try parser.topObject()
    }

    public static func parseObject(_ text: String) throws(JSONLineError) -> [(key: String, value: JSONField)] {
        try parseObject(ArraySlice(Array(text.utf8)))
    }

    struct Parser {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0
        var scratch: [UInt8] = []

        init(b: UnsafeBufferPointer<UInt8>) { self.b = b }

        func fail(_ m: String) -> JSONLineError { JSONLineError(message: m, byteOffset: min(i, b.count)) }

        mutating func skipWS() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        }

        mutating func topObject() throws(JSONLineError) -> [(key: String, value: JSONField)] {
            skipWS()
            // A UTF-8 byte-order mark before the object is tolerated.
            if b.count - i >= 3, b[i] == 0xEF, b[i + 1] == 0xBB, b[i + 2] == 0xBF { i += 3; skipWS() }
            guard i < b.count, b[i] == UInt8(ascii: "{") else { throw fail("expected a JSON object") }
            i += 1
            var fields: [(key: String, value: JSONField)] = []
            skipWS()
            if i < b.count, b[i] == UInt8(ascii: "}") {
                i += 1
            } else {
                while true {
                    skipWS()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                    let key = try string()
                    skipWS()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    skipWS()
                    guard i < b.count else { throw fail("unexpected end of line") }
                    if b[i] == UInt8(ascii: "\"") {
                        fields.append((key, .string(try string())))
                    } else {
                        let start = i
                        try skipValue(depth: 0)
                        guard let raw = String(validating: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self) else {
                            throw JSONLineError(message: "invalid UTF-8", byteOffset: start)
                        }
                        fields.append((key, .raw(raw)))
                    }
                    skipWS()
                    guard i < b.count else { throw fail("unexpected end of line") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; break }
                    throw fail("expected ',' or '}'")
                }
            }
            skipWS()
            guard i == b.count else { throw fail("unexpected text after the object") }
            return fields
        }

        /// The index of the first byte at or after `from` that ends a plain run inside a string: a quote, a
        /// backslash or a control character (b.count if none). Eight bytes at a time (SWAR): long texts are
        /// most of a JSON Lines file, and their runs between `\n` escapes are long.
        @inline(__always) func plainRunEnd(from: Int) -> Int {
            var k = from
            let n = b.count
            let base = UnsafeRawPointer(b.baseAddress!)
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            while k + 8 <= n {
                let v = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: k, as: UInt64.self))
                let quote = v ^ (ones &* 0x22), backslash = v ^ (ones &* 0x5C)
                let hit =
                    ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((v &- ones &* 0x20) & ~v)
                if hit & highs != 0 { break }
                k += 8
            }
            while k < n {
                let c = b[k]
                if c == 0x22 || c == 0x5C || c < 0x20 { return k }
                k += 1
            }
            return k
        }

        /// Decodes the string starting at the opening quote.
        mutating func string() throws(JSONLineError) -> String {
            i += 1
            let start = i
            // Fast path: no escapes.
            i = plainRunEnd(from: i)
            guard i < b.count else { throw fail("unterminated string") }
            if b[i] == UInt8(ascii: "\"") {
                guard let s = String(validating: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self) else {
                    throw JSONLineError(message: "invalid UTF-8 in a string", byteOffset: start)
                }
                i += 1
                return s
            }
            if b[i] < 0x20 { throw fail("control character in a string") }
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i]))
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    guard let s = String(validating: scratch, as: UTF8.self) else {
                        throw JSONLineError(message: "invalid UTF-8 in a string", byteOffset: start)
                    }
                    return s
                }
                if c < 0x20 { throw fail("control character in a string") }
                if c != UInt8(ascii: "\\") {
                    let end = plainRunEnd(from: i)
                    scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[i..<end]))
                    i = end
                    continue
                }
                i += 1
                guard i < b.count else { throw fail("unterminated escape") }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): scratch.append(0x22)
                case UInt8(ascii: "\\"): scratch.append(0x5C)
                case UInt8(ascii: "/"): scratch.append(0x2F)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        // A high surrogate must be followed by an escaped low one.
                        if i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                            i += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            throw fail("unpaired surrogate")
                        }
                    } else if (0xDC00..<0xE000).contains(code) {
                        throw fail("unpaired surrogate")
                    }
                    appendUTF8(code)
                default: throw fail("bad escape")
                }
            }
            throw fail("unterminated string")
        }

        mutating func appendUTF8(_ c: UInt32) {
            switch c {
            case 0..<0x80: scratch.append(UInt8(c))
            case 0x80..<0x800:
                scratch.append(UInt8(0xC0 | (c >> 6)))
                scratch.append(UInt8(0x80 | (c & 0x3F)))
            case 0x800..<0x10000:
                scratch.append(UInt8(0xE0 | (c >> 12)))
                scratch.append(UInt8(0x80 | ((c >> 6) & 0x3F)))
                scratch.append(UInt8(0x80 | (c & 0x3F)))
            default:
                scratch.append(UInt8(0xF0 | (c >> 18)))
                scratch.append(UInt8(0x80 | ((c >> 12) & 0x3F)))
                scratch.append(UInt8(0x80 | ((c >> 6) & 0x3F)))
                scratch.append(UInt8(0x80 | (c & 0x3F)))
            }
        }

        mutating func hex4() throws(JSONLineError) -> UInt32 {
            guard i + 4 <= b.count else { throw fail("short \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw fail("bad hex digit in \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        /// Skips (and checks) any JSON value.
        mutating func skipValue(depth: Int) throws(JSONLineError) {
            guard depth < 128 else { throw fail("nesting too deep") }
            skipWS()
            guard i < b.count else { throw fail("unexpected end of line") }
            switch b[i] {
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "{"):
                i += 1; skipWS()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return }
                while true {
                    skipWS()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                    _ = try string(); skipWS()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    try skipValue(depth: depth + 1); skipWS()
                    guard i < b.count else { throw fail("unexpected end of line") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1; skipWS()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return }
                while true {
                    try skipValue(depth: depth + 1); skipWS()
                    guard i < b.count else { throw fail("unexpected end of line") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), 0x30...0x39: try number()
            default: throw fail("unexpected character")
            }
        }

        mutating func literal(_ word: StaticString) throws(JSONLineError) {
            let n = word.utf8CodeUnitCount
            guard i + n <= b.count else { throw fail("bad literal") }
            for k in 0..<n where b[i + k] != word.utf8Start[k] { throw fail("bad literal") }
            i += n
        }

        mutating func number() throws(JSONLineError) {
            let start = i
            if b[i] == UInt8(ascii: "-") { i += 1 }
            var digits = 0
            while i < b.count, (0x30...0x39).contains(b[i]) { i += 1; digits += 1 }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                while i < b.count, (0x30...0x39).contains(b[i]) { i += 1 }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                while i < b.count, (0x30...0x39).contains(b[i]) { i += 1 }
            }
            if digits == 0 { i = start; throw fail("bad number") }
        }
    }
}

// MARK: - Writing

public enum JSONWriter {
    /// Appends `s` as a JSON string literal (RFC 8259 escaping; non-ASCII kept as UTF-8).
    public static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        var s = s
        s.withUTF8 { u in
            var runStart = 0
            var k = 0
            let ones: UInt64 = 0x0101_0101_0101_0101
            while k < u.count {
                // Eight bytes at a time past runs that need no escaping (SWAR, as in the parser).
                if k + 8 <= u.count {
                    let v = UInt64(littleEndian: UnsafeRawPointer(u.baseAddress! + k).loadUnaligned(as: UInt64.self))
                    let quote = v ^ (ones &* 0x22), backslash = v ^ (ones &* 0x5C)
                    let hit = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((v &- ones &* 0x20) & ~v)
                    if hit & 0x8080_8080_8080_8080 == 0 {
                        k += 8
                        continue
                    }
                }
                let c = u[k]
                k += 1
                if c >= 0x20 && c != 0x22 && c != 0x5C { continue }
                let at = k - 1
                out.append(contentsOf: UnsafeBufferPointer(rebasing: u[runStart..<at]))
                runStart = at + 1
                switch c {
                case 0x22: out.append(contentsOf: [0x5C, 0x22])
                case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
                case 0x0D: out.append(contentsOf: [0x5C, 0x72])
                case 0x09: out.append(contentsOf: [0x5C, 0x74])
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: u[runStart..<u.count]))
        }
        out.append(0x22)
    }

    /// `s` as a JSON string literal.
    public static func quoted(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        appendQuoted(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
