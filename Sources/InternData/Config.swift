// Loading stage configurations from JSON or YAML (same schema): the file's keys (snake_case) override the
// defaults, and an unknown key is an error naming the file and key (a typo must not silently fall back to a
// default).
import Foundation
import Yams

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

    /// Reads a JSON object from a file, or a YAML mapping from a `.yaml`/`.yml` file.
    static func readObject(path: String) throws(DatasetError) -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .io(file: path, message: "cannot read: \(error.localizedDescription)")
        }
        let lower = path.lowercased()
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") { return try readYAML(data, path: path) }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw .config(file: path, key: "", message: "not valid JSON: \(error.localizedDescription)")
        }
        guard let dict = object as? [String: Any] else { throw .config(file: path, key: "", message: "expected a JSON object") }
        return dict
    }

    static func readYAML(_ data: Data, path: String) throws(DatasetError) -> [String: Any] {
        guard let text = String(data: data, encoding: .utf8) else { throw .config(file: path, key: "", message: "not UTF-8 text") }
        let object: Any?
        do { object = try Yams.load(yaml: text) } catch {
            // Yams' message names the line and column.
            throw .config(file: path, key: "", message: "not valid YAML: \(error)")
        }
        guard let dict = jsonCompatible(object as Any) as? [String: Any] else {
            throw .config(file: path, key: "", message: "expected a YAML mapping at the top level")
        }
        return dict
    }

    /// Yams' values as JSONSerialization's: mappings with String keys, arrays, numbers, strings, NSNull.
    static func jsonCompatible(_ value: Any) -> Any {
        switch value {
        case let d as [AnyHashable: Any]:
            var out: [String: Any] = [:]
            for (k, v) in d { out["\(k.base)"] = jsonCompatible(v) }
            return out
        case let a as [Any]: return a.map(jsonCompatible)
        case is NSNull: return NSNull()
        default: return value
        }
    }

    /// Loads `T` from a JSON or YAML file, or the defaults when `path` is nil.
    static func load<T: Codable>(_ type: T.Type, defaults: T, path: String?) throws(DatasetError) -> T {
        guard let path else { return defaults }
        return try decode(T.self, defaults: defaults, object: readObject(path: path), file: path)
    }
}
