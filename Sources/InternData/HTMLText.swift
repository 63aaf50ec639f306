// Visible text of an HTML page, the way Common Crawl's WET files hold it: script, style, noscript, svg,
// template and head content dropped, a line break at every block element, entities decoded, whitespace
// collapsed within lines, empty lines removed. A forgiving scanner, not an HTML5 tree builder.

public enum HTMLText {
    static let skipped: Set<String> = ["script", "style", "noscript", "svg", "template", "head", "iframe", "object", "math"]
    static let blocks: Set<String> = [
        "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "table", "thead",
        "tbody", "tfoot", "section", "article", "header", "footer", "nav", "aside", "blockquote", "pre", "hr", "form",
        "dl", "dt", "dd", "main", "figure", "figcaption", "address", "title", "option", "caption", "fieldset",
        "legend", "details", "summary", "body", "html", "center", "menu", "textarea", "select", "label", "button",
    ]

    /// Extracts the visible text of `html`.
    public static func visibleText(_ html: String) -> String {
        var html = html
        return html.withUTF8 { extract($0) }
    }

    static func extract(_ b: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(b.count / 4)
        var pendingSpace = false
        var i = 0
        let n = b.count

        func newline() {
            pendingSpace = false
            while let l = out.last, l == 0x20 { out.removeLast() }
            if let l = out.last, l != 0x0A { out.append(0x0A) }
        }

        while i < n {
            let c = b[i]
            if c == UInt8(ascii: "<") {
                // Comment, doctype or processing instruction.
                if i + 3 < n, b[i + 1] == UInt8(ascii: "!"), b[i + 2] == UInt8(ascii: "-"), b[i + 3] == UInt8(ascii: "-") {
                    i = find(b, "-->", from: i + 4).map { $0 + 3 } ?? n
                    continue
                }
                if i + 1 < n, b[i + 1] == UInt8(ascii: "!") || b[i + 1] == UInt8(ascii: "?") {
                    i = findByte(b, UInt8(ascii: ">"), from: i + 2).map { $0 + 1 } ?? n
                    continue
                }
                var j = i + 1
                var closing = false
                if j < n, b[j] == UInt8(ascii: "/") { closing = true; j += 1 }
                let nameStart = j
                while j < n, isNameByte(b[j]) { j += 1 }
                if j == nameStart {
                    // A bare '<' in text.
                    appendText(0x3C, &out, &pendingSpace)
                    i += 1
                    continue
                }
                let name = lowerName(b, nameStart, j)
                // Find the end of the tag, skipping quoted attribute values.
                var quote: UInt8 = 0
                var selfClosing = false
                while j < n {
                    let d = b[j]
                    if quote != 0 {
                        if d == quote { quote = 0 }
                    } else if d == 0x22 || d == 0x27 {
                        quote = d
                    } else if d == UInt8(ascii: ">") {
                        selfClosing = j > 0 && b[j - 1] == UInt8(ascii: "/"); break
                    }
                    j += 1
                }
                i = min(n, j + 1)
                if !closing && !selfClosing && skipped.contains(name) {
                    i = skipElement(b, name: name, from: i)
                    newline()
                    continue
                }
                if blocks.contains(name) { newline() } else { pendingSpace = pendingSpace || !out.isEmpty && name == "img" }
                continue
            }
            if c == UInt8(ascii: "&") {
                if let (scalar, next) = decodeEntity(b, i) {
                    if scalar == 0xA0 || scalar == 0x20 { pendingSpace = true } else { appendScalar(scalar, &out, &pendingSpace) }
                    i = next
                    continue
                }
                appendText(c, &out, &pendingSpace)
                i += 1
                continue
            }
            if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0C {
                pendingSpace = true
                i += 1
                continue
            }
            // Copy a run of ordinary text bytes (UTF-8 sequences pass through whole).
            appendText(c, &out, &pendingSpace)
            i += 1
        }
        while let l = out.last, l == 0x20 || l == 0x0A { out.removeLast() }
        while let f = out.first, f == 0x0A { out.removeFirst() }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always) static func appendText(_ c: UInt8, _ out: inout [UInt8], _ pendingSpace: inout Bool) {
        if pendingSpace {
            if let l = out.last, l != 0x0A { out.append(0x20) }
            pendingSpace = false
        }
        out.append(c)
    }

    static func appendScalar(_ v: UInt32, _ out: inout [UInt8], _ pendingSpace: inout Bool) {
        guard let s = Unicode.Scalar(v) else { return }
        for u in String(Character(s)).utf8 { appendText(u, &out, &pendingSpace) }
    }

    @inline(__always) static func isAlnum(_ c: UInt8) -> Bool {
        ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A) || (c >= 0x30 && c <= 0x39)
    }

    @inline(__always) static func isNameByte(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: ":")
    }

    static func lowerName(_ b: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> String {
        var bytes = [UInt8](UnsafeBufferPointer(rebasing: b[s..<e]))
        for k in bytes.indices where bytes[k] >= 0x41 && bytes[k] <= 0x5A { bytes[k] |= 0x20 }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func findByte(_ b: UnsafeBufferPointer<UInt8>, _ c: UInt8, from: Int) -> Int? {
        var k = from
        while k < b.count { if b[k] == c { return k }; k += 1 }
        return nil
    }

    static func find(_ b: UnsafeBufferPointer<UInt8>, _ needle: StaticString, from: Int) -> Int? {
        let m = needle.utf8CodeUnitCount
        var k = from
        while k + m <= b.count {
            var ok = true
            for t in 0..<m where b[k + t] != needle.utf8Start[t] { ok = false; break }
            if ok { return k }
            k += 1
        }
        return nil
    }

    /// Skips to after `</name ...>`; for `head`, also stops at `<body` (pages that never close their head).
    static func skipElement(_ b: UnsafeBufferPointer<UInt8>, name: String, from: Int) -> Int {
        let target = Array(name.utf8)
        var k = from
        while k < b.count {
            guard let lt = findByte(b, UInt8(ascii: "<"), from: k) else { return b.count }
            var j = lt + 1
            let closing = j < b.count && b[j] == UInt8(ascii: "/")
            if closing { j += 1 }
            if matchesName(b, j, target) && (closing || name == "head") {
                if closing { return findByte(b, UInt8(ascii: ">"), from: j).map { $0 + 1 } ?? b.count }
            }
            if name == "head" && !closing && matchesName(b, j, Array("body".utf8)) { return lt }
            k = lt + 1
        }
        return b.count
    }

    static func matchesName(_ b: UnsafeBufferPointer<UInt8>, _ at: Int, _ target: [UInt8]) -> Bool {
        guard at + target.count <= b.count else { return false }
        for t in 0..<target.count where (b[at + t] | 0x20) != target[t] { return false }
        let after = at + target.count
        return after == b.count || !isNameByte(b[after])
    }

    static let namedEntities: [String: UInt32] = [
        "amp": 0x26, "lt": 0x3C, "gt": 0x3E, "quot": 0x22, "apos": 0x27, "nbsp": 0xA0, "copy": 0xA9, "reg": 0xAE,
        "trade": 0x2122, "mdash": 0x2014, "ndash": 0x2013, "hellip": 0x2026, "lsquo": 0x2018, "rsquo": 0x2019,
        "ldquo": 0x201C, "rdquo": 0x201D, "laquo": 0xAB, "raquo": 0xBB, "middot": 0xB7, "bull": 0x2022,
        "euro": 0x20AC, "pound": 0xA3, "yen": 0xA5, "cent": 0xA2, "sect": 0xA7, "deg": 0xB0, "times": 0xD7,
        "divide": 0xF7, "shy": 0xAD, "ensp": 0x2002, "emsp": 0x2003, "thinsp": 0x2009, "zwnj": 0x200C, "zwj": 0x200D,
        "eacute": 0xE9, "egrave": 0xE8, "agrave": 0xE0, "aacute": 0xE1, "ccedil": 0xE7, "ouml": 0xF6, "uuml": 0xFC,
        "auml": 0xE4, "szlig": 0xDF, "Ouml": 0xD6, "Uuml": 0xDC, "Auml": 0xC4, "Eacute": 0xC9, "ecirc": 0xEA,
        "ocirc": 0xF4, "icirc": 0xEE, "acirc": 0xE2, "ucirc": 0xFB, "iuml": 0xEF, "euml": 0xEB, "ntilde": 0xF1,
        "oacute": 0xF3, "iacute": 0xED, "uacute": 0xFA, "para": 0xB6, "plusmn": 0xB1, "frac12": 0xBD, "hearts": 0x2665,
        "larr": 0x2190, "rarr": 0x2192, "uarr": 0x2191, "darr": 0x2193,
    ]

    /// Decodes `&name;`, `&#123;` or `&#x1F;` at `i`; nil when it is not an entity.
    static func decodeEntity(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int)? {
        var j = i + 1
        guard j < b.count else { return nil }
        if b[j] == UInt8(ascii: "#") {
            j += 1
            var hex = false
            if j < b.count, b[j] | 0x20 == UInt8(ascii: "x") { hex = true; j += 1 }
            var v: UInt32 = 0
            var digits = 0
            while j < b.count, digits < 8 {
                let c = b[j]
                let d: UInt32
                if c >= 0x30 && c <= 0x39 {
                    d = UInt32(c - 0x30)
                } else if hex, (c | 0x20) >= 0x61, (c | 0x20) <= 0x66 {
                    d = UInt32((c | 0x20) - 0x61 + 10)
                } else {
                    break
                }
                v = v * (hex ? 16 : 10) + d
                digits += 1
                j += 1
            }
            guard digits > 0 else { return nil }
            if j < b.count, b[j] == UInt8(ascii: ";") { j += 1 }
            if v == 0 || v > 0x10FFFF || (0xD800...0xDFFF).contains(v) { v = 0xFFFD }
            return (v, j)
        }
        let start = j
        while j < b.count, j - start < 10, isAlnum(b[j]) { j += 1 }
        guard j > start, j < b.count, b[j] == UInt8(ascii: ";") else { return nil }
        let name = String(decoding: UnsafeBufferPointer(rebasing: b[start..<j]), as: UTF8.self)
        guard let v = namedEntities[name] ?? namedEntities[name.lowercased()] else { return nil }
        return (v, j + 1)
    }
}
