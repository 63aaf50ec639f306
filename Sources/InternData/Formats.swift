// The format stage: turns JSON Lines (any text field), plain text, CSV and WARC files into pipeline
// documents. WARC handling follows what Common Crawl's WET extraction does: HTTP 200 HTML responses only,
// the declared charset decoded (header first, then <meta>), visible text kept (see HTMLText).

/// The kinds of input `intern data format` reads.
public enum InputFormat: String, Sendable, CaseIterable {
    case jsonl, text, csv, warc

    /// Guesses the format from a file name: .jsonl/.json[.gz], .csv, .warc[.gz], anything else is text.
    public static func guess(path: String) -> InputFormat {
        var name = path.lowercased()
        if name.hasSuffix(".gz") { name.removeLast(3) }
        if name.hasSuffix(".jsonl") || name.hasSuffix(".json") || name.hasSuffix(".ndjson") { return .jsonl }
        if name.hasSuffix(".csv") { return .csv }
        if name.hasSuffix(".warc") { return .warc }
        return .text
    }
}

/// Options of the format stage.
public struct FormatOptions: Sendable {
    /// The field (JSONL) or column (CSV) that holds the text.
    public var textField = "text"
    public var idField = "id"
    public var urlField = "url"
    /// The `source` of every document; nil: the input file's name without extensions.
    public var source: String?
    /// Re-tag documents that already carry a `lang`.
    public var retag = false
    /// Tag languages here; the pipeline turns this off and tags in its worker threads instead.
    public var tagLanguage = true
    public var strict = false

    public init() {}
}

/// Reads inputs of any supported format and hands each document to a sink.
public struct DocumentFormatter {
    public var options: FormatOptions
    public private(set) var bad = BadInputLog()
    /// Bytes read from the inputs (uncompressed).
    public private(set) var bytesIn = 0
    public private(set) var recordsSkipped = 0

    public init(options: FormatOptions = FormatOptions()) {
        self.options = options
    }

    static func baseName(_ path: String) -> String {
        var name = String(path.split(separator: "/").last ?? Substring(path))
        for ext in [".gz", ".zst", ".jsonl", ".json", ".ndjson", ".csv", ".warc", ".txt"] where name.hasSuffix(ext) {
            name.removeLast(ext.count)
        }
        return name
    }

    mutating func fail(_ e: DatasetError) throws(DatasetError) {
        if options.strict { throw e }
        bad.record(e)
    }

    func finishDocument(_ doc: inout Document, path: String) {
        if doc.source.isEmpty { doc.source = options.source ?? Self.baseName(path) }
        guard options.tagLanguage else { return }
        if doc.lang.isEmpty || options.retag { doc.lang = LanguageTagger.tag(doc.text) }
    }

    /// Reads `path` as `format` (nil: guessed from the name) and calls `sink` per document.
    public mutating func read(
        path: String, format: InputFormat? = nil,
        sink: (Document) throws(DatasetError) -> Void
    ) throws(DatasetError) {
        switch format ?? InputFormat.guess(path: path) {
        case .jsonl: try readJSONL(path: path, sink: sink)
        case .text: try readText(path: path, sink: sink)
        case .csv: try readCSV(path: path, sink: sink)
        case .warc: try readWARC(path: path, sink: sink)
        }
    }

    // MARK: JSON Lines

    mutating func readJSONL(path: String, sink: (Document) throws(DatasetError) -> Void) throws(DatasetError) {
        let reader = try ByteReader(path: path)
        while true {
            let line: ArraySlice<UInt8>
            do {
                guard let l = try reader.nextLine() else { break }
                line = l
            } catch {
                try fail(error)
                break
            }
            bytesIn += line.count + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            var doc: Document
            do {
                let fields = try JSONLine.parseObject(line)
                let n = reader.lineNumber
                doc = try Document(
                    fields: fields, textField: options.textField, idField: options.idField,
                    urlField: options.urlField, defaultID: "\(Self.baseName(path)):\(n)")
            } catch {
                try fail(.badRecord(file: path, line: reader.lineNumber, message: error.description))
                continue
            }
            finishDocument(&doc, path: path)
            try sink(doc)
        }
    }

    // MARK: Plain text

    mutating func readText(path: String, sink: (Document) throws(DatasetError) -> Void) throws(DatasetError) {
        let bytes = try ByteReader(path: path).readAll()
        bytesIn += bytes.count
        guard let text = String(validating: bytes, as: UTF8.self) else {
            try fail(.badRecord(file: path, line: 1, message: "invalid UTF-8"))
            return
        }
        var doc = Document(id: Self.baseName(path), text: text)
        finishDocument(&doc, path: path)
        try sink(doc)
    }

    // MARK: CSV

    mutating func readCSV(path: String, sink: (Document) throws(DatasetError) -> Void) throws(DatasetError) {
        let bytes = try ByteReader(path: path).readAll()
        bytesIn += bytes.count
        guard let content = String(validating: bytes, as: UTF8.self) else {
            try fail(.badRecord(file: path, line: 1, message: "invalid UTF-8"))
            return
        }
        let rows = CSV.parse(content)
        guard let header = rows.first?.fields else { return }
        guard let textColumn = header.firstIndex(of: options.textField) else {
            throw .badRecord(file: path, line: 1, message: "no column '\(options.textField)' in the header \(header)")
        }
        let idColumn = header.firstIndex(of: options.idField)
        let urlColumn = header.firstIndex(of: options.urlField)
        for row in rows.dropFirst() {
            if row.fields.count == 1 && row.fields[0].isEmpty { continue }
            guard row.fields.count == header.count else {
                try fail(.badRecord(file: path, line: row.line, message: "\(row.fields.count) columns, the header has \(header.count)"))
                continue
            }
            var doc = Document(
                id: idColumn.map { row.fields[$0] } ?? "\(Self.baseName(path)):\(row.line)",
                text: row.fields[textColumn], url: urlColumn.map { row.fields[$0] } ?? "")
            for (k, name) in header.enumerated() where k != textColumn && k != idColumn && k != urlColumn {
                doc.setMeta(name, raw: JSONWriter.quoted(row.fields[k]))
            }
            finishDocument(&doc, path: path)
            try sink(doc)
        }
    }

    // MARK: WARC

    mutating func readWARC(path: String, sink: (Document) throws(DatasetError) -> Void) throws(DatasetError) {
        let reader = try ByteReader(path: path)
        var recordIndex = 0
        while true {
            // Find the next "WARC/x.y" version line.
            var versionLine: ArraySlice<UInt8>?
            do {
                while let l = try reader.nextLine() {
                    if l.isEmpty { continue }
                    versionLine = l
                    break
                }
            } catch {
                try fail(error)
                return
            }
            guard let version = versionLine else { return }
            let startLine = reader.lineNumber
            recordIndex += 1
            guard version.starts(with: Array("WARC/".utf8)) else {
                try fail(
                    .badRecord(
                        file: path, line: startLine, message: "expected a WARC version line, found \(String(decoding: version.prefix(40), as: UTF8.self))"))
                return
            }
            var headers: [String: String] = [:]
            do {
                while let l = try reader.nextLine(), !l.isEmpty {
                    let s = String(decoding: l, as: UTF8.self)
                    if let colon = s.firstIndex(of: ":") {
                        headers[s[..<colon].lowercased()] = String(s[s.index(after: colon)...].trimmedWhitespace())
                    }
                }
            } catch {
                try fail(error)
                return
            }
            guard let lengthText = headers["content-length"], let length = Int(lengthText) else {
                try fail(.badRecord(file: path, line: startLine, message: "WARC record without a Content-Length"))
                return
            }
            let block: [UInt8]
            do { block = try reader.read(count: length) } catch { try fail(error); return }
            bytesIn += block.count
            guard block.count == length else {
                try fail(.badRecord(file: path, line: startLine, message: "WARC record \(recordIndex) is truncated"))
                return
            }
            guard headers["warc-type"] == "response",
                headers["content-type"]?.lowercased().hasPrefix("application/http") == true
            else { continue }
            guard let page = HTTPResponse(block) else {
                try fail(.badRecord(file: path, line: startLine, message: "WARC record \(recordIndex): unreadable HTTP response"))
                continue
            }
            let contentType = page.headers["content-type"]?.lowercased() ?? "text/html"
            guard page.status == 200, contentType.contains("html") || contentType.hasPrefix("text/plain") else {
                recordsSkipped += 1
                continue
            }
            let declared = page.headers["content-type"].flatMap(Charset.fromContentType) ?? Charset.fromMeta(page.body[...])
            let (decoded, used) = Charset.decode(page.body[...], charset: declared)
            let text = contentType.contains("html") ? HTMLText.visibleText(decoded) : decoded
            var id = headers["warc-record-id"] ?? "\(Self.baseName(path)):\(recordIndex)"
            if id.hasPrefix("<urn:uuid:") && id.hasSuffix(">") { id = String(id.dropFirst(10).dropLast()) }
            var url = headers["warc-target-uri"] ?? ""
            if url.hasPrefix("<") && url.hasSuffix(">") { url = String(url.dropFirst().dropLast()) }
            var doc = Document(id: id, text: text, url: url)
            if let date = headers["warc-date"] { doc.setMeta("warc_date", raw: JSONWriter.quoted(date)) }
            doc.setMeta("charset", raw: JSONWriter.quoted(used))
            finishDocument(&doc, path: path)
            try sink(doc)
        }
    }
}

/// The parts of an HTTP/1.x response that the format stage needs; chunked bodies are joined.
struct HTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    init?(_ block: [UInt8]) {
        // Headers end at the first empty line (CRLF CRLF, or LF LF from sloppy servers).
        var end = -1
        var bodyStart = 0
        var k = 0
        while k + 1 < block.count {
            if block[k] == 0x0A {
                if block[k + 1] == 0x0A { end = k; bodyStart = k + 2; break }
                if block[k + 1] == 0x0D, k + 2 < block.count, block[k + 2] == 0x0A { end = k; bodyStart = k + 3; break }
            }
            k += 1
        }
        if end < 0 { end = block.count; bodyStart = block.count }
        let head = String(decoding: block[0..<end], as: UTF8.self)
        var lines = head.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map { $0.trimmingSuffixCR() }
        guard !lines.isEmpty, lines[0].hasPrefix("HTTP/") else { return nil }
        let statusParts = lines.removeFirst().split(separator: " ")
        guard statusParts.count >= 2, let code = Int(statusParts[1]) else { return nil }
        status = code
        headers = [:]
        for line in lines {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...].trimmedWhitespace())
            }
        }
        body = Array(block[bodyStart...])
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = Self.dechunk(body) ?? body
        }
    }

    static func dechunk(_ data: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while i < data.count {
            var j = i
            while j < data.count, data[j] != 0x0A { j += 1 }
            guard j < data.count else { return nil }
            let sizeText = String(decoding: data[i..<j], as: UTF8.self).trimmingSuffixCR().split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmedWhitespace(), radix: 16) else { return nil }
            i = j + 1
            if size == 0 { return out }
            guard i + size <= data.count else { return nil }
            out.append(contentsOf: data[i..<(i + size)])
            i += size
            if i < data.count, data[i] == 0x0D { i += 1 }
            if i < data.count, data[i] == 0x0A { i += 1 }
        }
        return out
    }
}

extension StringProtocol {
    func trimmingSuffixCR() -> String {
        var s = String(self)
        if s.hasSuffix("\r") { s.removeLast() }
        return s
    }

    func trimmedWhitespace() -> Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" || f == "\r\n" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" || l == "\r\n" { s.removeLast() }
        return s
    }
}

/// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines.
public enum CSV {
    public struct Row: Sendable { public var fields: [String]; public var line: Int }

    public static func parse(_ text: String) -> [Row] {
        var rows: [Row] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var rowLine = 1
        var it = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let p = pending { pending = nil; return p }
            return it.next()
        }
        while let c = next() {
            if inQuotes {
                if c == "\"" {
                    if let d = next() {
                        if d == "\"" { field.unicodeScalars.append("\"") } else { inQuotes = false; pending = d }
                    } else {
                        inQuotes = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where field.isEmpty: inQuotes = true
            case ",": fields.append(field); field = ""
            case "\r": break
            case "\n":
                fields.append(field); field = ""
                rows.append(Row(fields: fields, line: rowLine))
                fields = []
                line += 1
                rowLine = line
            default: field.unicodeScalars.append(c)
            }
        }
        if !field.isEmpty || !fields.isEmpty {
            fields.append(field)
            rows.append(Row(fields: fields, line: rowLine))
        }
        return rows
    }
}
