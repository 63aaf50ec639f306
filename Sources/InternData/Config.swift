// Loading stage configurations from JSON: the file's keys (snake_case) override the defaults, and an
// unknown key is an error naming the file and key (a typo must not silently fall back to a default).
import Foundation

enum ConfigLoader {
    /// Decodes `T` from the JSON object `object`, filling missing keys from `T()`'s values.
    static func decode<T: Codable>(_ type: T.Type, defaults: T, object: [String: Any], file: String, path: String = "")
        throws(DatasetError) -> T
    {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            let defaultData = try encoder.encode(defaults)
            guard var merged = try JSONSerialization.jsonObject(with: defaultData) as? [String: Any] else {
                throw DatasetError.config(file: file, key: path, message: "internal: defaults are not an object")
            }
            for (key, value) in object {
                guard merged[key] != nil else {
                    let known = merged.keys.sorted().joined(separator: ", ")
                    throw DatasetError.config(file: file, key: path + key, message: "unknown key (known: \(known))")
                }
                merged[key] = value
            }
            let data = try JSONSerialization.data(withJSONObject: merged)
            return try decoder.decode(T.self, from: data)
        } catch let e as DatasetError {
            throw e
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .config(file: file, key: path + key, message: "wrong type: \(context.debugDescription)")
        } catch {
            throw .config(file: file, key: path, message: "\(error)")
        }
    }

    /// Reads a JSON object from a file.
    static func readObject(path: String) throws(DatasetError) -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .io(file: path, message: "cannot read: \(error.localizedDescription)")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw .config(file: path, key: "", message: "not valid JSON: \(error.localizedDescription)")
        }
        guard let dict = object as? [String: Any] else { throw .config(file: path, key: "", message: "expected a JSON object") }
        return dict
    }

    /// Loads `T` from a JSON file, or the defaults when `path` is nil.
    static func load<T: Codable>(_ type: T.Type, defaults: T, path: String?) throws(DatasetError) -> T {
        guard let path else { return defaults }
        return try decode(T.self, defaults: defaults, object: readObject(path: path), file: path)
    }
}
