// Decoding web pages to Unicode: the charset an HTTP header or a <meta> tag declares, UTF-8 by default.
// Foundation on Linux knows no GBK/GB18030/Big5/Shift_JIS (String.Encoding has only the Western and
// Unicode encodings there), so those go through iconv, which glibc and macOS both provide.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public enum Charset {
    /// The charset named in a Content-Type value (`text/html; charset=GBK`), lower-cased.
    public static func fromContentType(_ value: String) -> String? {
        let lower = value.lowercased()
        guard let r = lower.range(of: "charset=") else { return nil }
        var name = lower[r.upperBound...].drop(while: { $0 == " " || $0 == "\"" || $0 == "'" })
        name = name.prefix(while: { !($0 == ";" || $0 == "\"" || $0 == "'" || $0 == " " || $0 == ">" || $0 == "/") })
        return name.isEmpty ? nil : String(name)
    }

    /// The charset a page declares in its first 4 KB (`<meta charset=...>` or an http-equiv Content-Type).
    public static func fromMeta(_ html: ArraySlice<UInt8>) -> String? {
        let head = String(decoding: html.prefix(4096), as: UTF8.self).lowercased()
        var search = head[...]
        while let m = search.range(of: "<meta") {
            let tagEnd = search[m.upperBound...].firstIndex(of: ">") ?? search.endIndex
            let tag = String(search[m.upperBound..<tagEnd])
            if let r = tag.range(of: "charset=") {
                var name = tag[r.upperBound...].drop(while: { $0 == " " || $0 == "\"" || $0 == "'" })
                name = name.prefix(while: { !($0 == ";" || $0 == "\"" || $0 == "'" || $0 == " " || $0 == "/" || $0 == ">") })
                if !name.isEmpty { return String(name) }
            }
            search = search[tagEnd...]
        }
        return nil
    }

    /// Decodes `bytes` from `charset` (nil: UTF-8). Unknown charsets and undecodable bytes fall back to
    /// UTF-8 with U+FFFD replacements. Returns the text and the charset actually used.
    public static func decode(_ bytes: ArraySlice<UInt8>, charset: String?) -> (text: String, charset: String) {
        let name = normalise(charset ?? "utf-8")
        switch name {
        case "utf-8":
            if let s = String(validating: bytes, as: UTF8.self) { return (s, "utf-8") }
            // Pages that say nothing (or lie) and are not UTF-8 are most often Windows-1252.
            if charset == nil { return (windows1252(bytes), "windows-1252") }
            return (String(decoding: bytes, as: UTF8.self), "utf-8")
        case "iso-8859-1", "windows-1252":
            return (windows1252(bytes), name)
        default:
            if let s = iconvDecode(bytes, from: name) { return (s, name) }
            return (String(decoding: bytes, as: UTF8.self), "utf-8")
        }
    }

    /// Canonical names: aliases of one decoder map to one name; GB2312 and GBK decode as GB18030 (a superset).
    static func normalise(_ raw: String) -> String {
        let n = raw.lowercased().trimmedWhitespace()
        switch n {
        case "utf8", "utf-8", "unicode-1-1-utf-8": return "utf-8"
        case "latin1", "latin-1", "iso-8859-1", "iso8859-1", "us-ascii", "ascii": return "iso-8859-1"
        case "windows-1252", "cp1252", "x-cp1252": return "windows-1252"
        case "gb2312", "gbk", "gb18030", "x-gbk", "cp936", "euc-cn": return "gb18030"
        case "big5", "big5-hkscs", "x-big5": return "big5"
        case "shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji": return "shift_jis"
        default: return String(n)
        }
    }

    static let cp1252High: [UInt32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
        0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ]

    static func windows1252(_ bytes: ArraySlice<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes {
            let v: UInt32 = (0x80...0x9F).contains(b) ? cp1252High[Int(b - 0x80)] : UInt32(b)
            s.append(Unicode.Scalar(v)!)
        }
        return String(s)
    }

    /// Decodes through iconv; invalid sequences become U+FFFD. Nil when iconv does not know the charset.
    static func iconvDecode(_ bytes: ArraySlice<UInt8>, from charset: String) -> String? {
        let cd = iconv_open("UTF-8", charset.uppercased())
        if cd == iconv_t(bitPattern: -1) { return nil }
        defer { iconv_close(cd) }
        var input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 2 + 16)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var offset = 0
        while offset < input.count {
            var inLeft = input.count - offset
            var outLeft = chunk.count
            var rc = 0
            var err: Int32 = 0
            input.withUnsafeMutableBufferPointer { ib in
                chunk.withUnsafeMutableBufferPointer { ob in
                    var ip: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(ib.baseAddress! + offset).assumingMemoryBound(to: CChar.self)
                    var op: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(ob.baseAddress!).assumingMemoryBound(to: CChar.self)
                    rc = iconv(cd, &ip, &inLeft, &op, &outLeft)
                    if rc == -1 { err = errno }
                }
            }
            output.append(contentsOf: chunk[0..<(chunk.count - outLeft)])
            offset = input.count - inLeft
            if rc == -1 && err != E2BIG {
                // EILSEQ or EINVAL (truncated at the end): replace one byte and go on.
                output.append(contentsOf: [0xEF, 0xBF, 0xBD])
                offset += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
