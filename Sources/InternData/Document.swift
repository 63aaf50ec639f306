// The pipeline's record: one JSON object a line with `id`, `text`, `source`, `lang`, `url` and `meta`,
// and the reader that turns JSON Lines into records, counting bad lines with file and line.

/// One document of the pipeline schema.
public struct Document: Sendable, Equatable {
    public var id: String
    public var text: String
    /// Where the document came from: a corpus name or the input file.
    public var source: String
    /// "zh", "en", "de", "fr", "code" or "other" (see `LanguageTagger`).
    public var lang: String
    /// May be empty.
    public var url: String
    /// The raw JSON text of an object with anything else worth keeping.
    public var meta: String

    public init(id: String, text: String, source: String = "", lang: String = "", url: String = "", meta: String = "{}") {
        self.id = id
        self.text = text
        self.source = source
        self.lang = lang
        self.url = url
        self.meta = meta
    }

    /// Builds a document from a parsed JSON object whose text is under `textField`. Fields outside the schema
    /// move into `meta`. Throws when the text field is missing or not a string.
    public init(
        fields: [(key: String, value: JSONField)], textField: String = "text", idField: String = "id",
        urlField: String = "url", defaultID: @autoclosure () -> String
    ) throws(JSONLineError) {
        var text: String?
        var id: String?
        var source = "", lang = "", url = ""
        var meta: String?
        var extra: [(String, JSONField)] = []
        for (key, value) in fields {
            switch key {
            case textField:
                guard case let .string(s) = value else { throw JSONLineError(message: "field '\(textField)' is not a string", byteOffset: -1) }
                text = s
            case idField: id = value.stringValue
            case urlField: url = value.stringValue ?? ""
            case "source": source = value.stringValue ?? ""
            case "lang": lang = value.stringValue ?? ""
            case "meta":
                if case let .raw(r) = value, r.hasPrefix("{") { meta = r } else { extra.append((key, value)) }
            default: extra.append((key, value))
            }
        }
        guard let text else { throw JSONLineError(message: "missing text field '\(textField)'", byteOffset: -1) }
        self.init(id: id ?? defaultID(), text: text, source: source, lang: lang, url: url, meta: meta ?? "{}")
        for (key, value) in extra {
            switch value {
            case let .string(s): setMeta(key, raw: JSONWriter.quoted(s))
            case let .raw(r): setMeta(key, raw: r)
            }
        }
    }

    /// Adds `"key": raw` to `meta` (raw is JSON text). Does not look for an existing key.
    public mutating func setMeta(_ key: String, raw: String) {
        let trimmed = meta.trimmedWhitespace()
        let entry = JSONWriter.quoted(key) + ": " + raw
        if trimmed == "{}" || trimmed.isEmpty {
            meta = "{" + entry + "}"
        } else {
            meta = String(trimmed.dropLast()) + ", " + entry + "}"
        }
    }

    /// Appends the document as one JSON line (with the newline).
    public func appendJSONLine(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"id": "#.utf8)
        JSONWriter.appendQuoted(id, to: &out)
        out.append(contentsOf: #", "text": "#.utf8)
        JSONWriter.appendQuoted(text, to: &out)
        out.append(contentsOf: #", "source": "#.utf8)
        JSONWriter.appendQuoted(source, to: &out)
        out.append(contentsOf: #", "lang": "#.utf8)
        JSONWriter.appendQuoted(lang, to: &out)
        out.append(contentsOf: #", "url": "#.utf8)
        JSONWriter.appendQuoted(url, to: &out)
        out.append(contentsOf: #", "meta": "#.utf8)
        out.append(contentsOf: meta.utf8)
        out.append(contentsOf: "}\n".utf8)
    }

    public var jsonLine: String {
        var out: [UInt8] = []
        appendJSONLine(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

// MARK: - Bad input

/// Counts unusable input records and keeps the first few messages (file:line: why).
public struct BadInputLog: Sendable {
    public private(set) var count = 0
    public private(set) var examples: [String] = []
    public var limit = 20

    public init() {}

    public mutating func record(_ error: DatasetError) {
        count += 1
        if examples.count < limit { examples.append(error.description) }
    }

    public mutating func merge(_ other: BadInputLog) {
        count += other.count
        for e in other.examples where examples.count < limit { examples.append(e) }
    }
}

// MARK: - Reading documents

/// Reads pipeline documents from JSON Lines files (plain or gzip), one after another. Bad lines are
/// counted in `bad` and skipped, or thrown when `strict`.
public final class DocumentReader {
    public let paths: [String]
    public let strict: Bool
    public let textField: String
    /// Only lines with (line - 1) % shardCount == shardIndex are read (deterministic `--shard K/N`).
    public let shard: Shard
    public private(set) var bad = BadInputLog()
    /// Bytes of the lines read (the input size).
    public private(set) var bytesRead = 0
    private var fileIndex = 0
    private var reader: ByteReader?
    private var globalLine = 0
    /// The 1-based line number, counted across all files, of the last document returned.
    public private(set) var lastRecordLine = 0

    public init(paths: [String], textField: String = "text", strict: Bool = false, shard: Shard = .all) {
        self.paths = paths
        self.textField = textField
        self.strict = strict
        self.shard = shard
    }

    /// The next document, or nil when every file is read.
    public func next() throws(DatasetError) -> Document? {
        while true {
            if reader == nil {
                guard fileIndex < paths.count else { return nil }
                reader = try ByteReader(path: paths[fileIndex])
            }
            let r = reader!
            let line: ArraySlice<UInt8>?
            do {
                line = try r.nextLine()
            } catch {
                // A damaged gzip stream ends this file.
                if strict { throw error }
                bad.record(error)
                line = nil
            }
            guard let line else {
                reader = nil
                fileIndex += 1
                continue
            }
            globalLine += 1
            if !shard.contains(globalLine - 1) { continue }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            bytesRead += line.count + 1
            do {
                let fields = try JSONLine.parseObject(line)
                let path = r.path, n = r.lineNumber
                let doc = try Document(fields: fields, textField: textField, defaultID: "\(path):\(n)")
                lastRecordLine = globalLine
                return doc
            } catch {
                let e = DatasetError.badRecord(file: r.path, line: r.lineNumber, message: error.description)
                if strict { throw e }
                bad.record(e)
            }
        }
    }
}

/// A deterministic slice of the input: record k of the stream belongs to shard k % count.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int
    public static let all = Shard(index: 0, count: 1)

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// Parses "K/N" with 0 ≤ K < N.
    public init(parsing text: String) throws(DatasetError) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n > 0, k >= 0, k < n else {
            throw .usage("--shard must be K/N with 0 <= K < N, got '\(text)'")
        }
        self.init(index: k, count: n)
    }

    public func contains(_ recordIndex: Int) -> Bool { count == 1 || recordIndex % count == index }
    public var description: String { "\(index)/\(count)" }
}

/// Writes documents as JSON Lines to a file, atomically.
public final class DocumentWriter {
    private let writer: AtomicWriter
    private var buffer: [UInt8] = []
    public private(set) var documents = 0

    /// `durable: false` skips the fsync before the rename (see `AtomicWriter`).
    public init(path: String, durable: Bool = true) throws(DatasetError) {
        writer = try AtomicWriter(path: path, durable: durable)
    }

    public var bytesWritten: Int { writer.bytesWritten + buffer.count }

    public func write(_ document: Document) throws(DatasetError) {
        document.appendJSONLine(to: &buffer)
        documents += 1
        if buffer.count > 1 << 20 {
            try writer.write(buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }

    /// Writes `count` documents already serialized as JSON Lines.
    func write(serialized bytes: [UInt8], documents count: Int) throws(DatasetError) {
        if !buffer.isEmpty {
            try writer.write(buffer)
            buffer.removeAll(keepingCapacity: true)
        }
        try writer.write(bytes)
        documents += count
    }

    public func finish() throws(DatasetError) {
        try writer.write(buffer)
        buffer.removeAll()
        try writer.finish()
    }
}
