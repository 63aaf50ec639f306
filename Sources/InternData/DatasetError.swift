// The one error type of InternData. Every case names the file (and line or byte offset where one applies)
// so that a user can open the input and see what is wrong.
public import Foundation

/// An error reading, parsing or writing a data set, or in a data-pipeline configuration.
public enum DatasetError: Error, LocalizedError, CustomStringConvertible, Sendable, Equatable {
    /// A file could not be opened, read, written or renamed.
    case io(file: String, message: String)
    /// One input record is unusable: broken JSON, invalid UTF-8, a missing text field.
    case badRecord(file: String, line: Int, message: String)
    /// A compressed or container file is damaged (truncated gzip, bad WARC header) at a byte offset.
    case corrupt(file: String, offset: Int, message: String)
    /// A configuration file has a bad or unknown key.
    case config(file: String, key: String, message: String)
    /// An argument combination that cannot work.
    case usage(String)

    public var description: String {
        switch self {
        case let .io(file, message): return "\(file): \(message)"
        case let .badRecord(file, line, message): return "\(file):\(line): \(message)"
        case let .corrupt(file, offset, message): return "\(file): at byte \(offset): \(message)"
        case let .config(file, key, message): return key.isEmpty ? "\(file): \(message)" : "\(file): key '\(key)': \(message)"
        case let .usage(message): return message
        }
    }

    public var errorDescription: String? { description }
}
