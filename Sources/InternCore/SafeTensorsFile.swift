// Reader for one .safetensors file over mmap: an 8-byte little-endian header length, a JSON header
// mapping tensor names to {dtype, shape, data_offsets}, then the data section. The header is validated
// completely before any tensor is used (lengths, JSON, dtypes, offsets inside the data, sizes that match
// dtype × shape, no overlaps), as the reference `safetensors` crate does (huggingface/safetensors
// safetensors/src/tensor.rs `validate`). Writing lives in SafeTensorsWriter.swift.
import Foundation

/// Where one tensor sits in a safetensors file.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range inside the data section (after the header).
    public let dataOffsets: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A view of one tensor's bytes inside a mapped file; it keeps the mapping alive.
public struct TensorView: @unchecked Sendable {
    public let info: TensorInfo
    /// The file it came from, for error messages.
    public let file: String
    public let data: UnsafeRawPointer
    let mapping: MappedFile

    public var name: String { info.name }
    public var dtype: DType { info.dtype }
    public var shape: [Int] { info.shape }
}

/// One mapped, validated safetensors file.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    /// The file's name without its directory, as errors show it.
    public var fileName: String { (path as NSString).lastPathComponent }

    public init(path: String) throws {
        self.path = path
        let name = (path as NSString).lastPathComponent
        file = try MappedFile(path: path)
        guard file.size >= 8 else {
            throw CheckpointError.headerLengthBeyondFile(file: name, headerLength: 0, fileSize: file.size)
        }
        let headerLength = UInt64(littleEndian: file.base.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(file.size - 8) else {
            throw CheckpointError.headerLengthBeyondFile(file: name, headerLength: headerLength, fileSize: file.size)
        }
        dataStart = 8 + Int(headerLength)
        let headerBytes = Data(bytes: file.base + 8, count: Int(headerLength))
        let header: RawHeader
        do {
            header = try JSONDecoder().decode(RawHeader.self, from: headerBytes)
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError.corruptHeader(file: name, reason: Self.describe(error))
        }
        metadata = header.metadata
        let dataSize = file.size - dataStart
        var tensors: [String: TensorInfo] = [:]
        for (tensorName, entry) in header.entries {
            guard let dtype = DType(rawValue: entry.dtype) else {
                throw CheckpointError.unsupportedDType(file: name, tensor: tensorName, dtype: entry.dtype)
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError.corruptHeader(file: name, reason: "tensor '\(tensorName)' has a negative dimension in shape \(entry.shape)")
            }
            let offsets = entry.dataOffsets
            guard offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw CheckpointError.corruptHeader(
                    file: name, reason: "tensor '\(tensorName)' has data_offsets \(offsets); expected [begin, end] with 0 ≤ begin ≤ end")
            }
            guard offsets[1] <= dataSize else {
                throw CheckpointError.dataOutOfRange(file: name, tensor: tensorName, offsets: offsets, dataSize: dataSize)
            }
            let (elements, overflow) = entry.shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            let expected = elements * dtype.byteSize
            guard !overflow, expected == offsets[1] - offsets[0] else {
                throw CheckpointError.sizeMismatch(
                    file: name, tensor: tensorName, dtype: dtype.rawValue, shape: entry.shape,
                    expectedBytes: overflow ? Int.max : expected, actualBytes: offsets[1] - offsets[0])
            }
            tensors[tensorName] = TensorInfo(name: tensorName, dtype: dtype, shape: entry.shape, dataOffsets: offsets[0]..<offsets[1])
        }
        let ordered = tensors.values.filter { !$0.dataOffsets.isEmpty }.sorted { $0.dataOffsets.lowerBound < $1.dataOffsets.lowerBound }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.dataOffsets.lowerBound < a.dataOffsets.upperBound {
            throw CheckpointError.overlappingTensors(file: name, first: a.name, second: b.name)
        }
        self.tensors = tensors
    }

    /// The tensor called `name`, or `CheckpointError.missingTensor`.
    public func tensor(_ name: String) throws -> TensorView {
        guard let info = tensors[name] else { throw CheckpointError.missingTensor(file: fileName, tensor: name) }
        return TensorView(info: info, file: fileName, data: file.base + dataStart + info.dataOffsets.lowerBound, mapping: file)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context):
            return "invalid JSON" + Self.path(context.codingPath) + (context.underlyingError.map { ": \($0.localizedDescription)" } ?? "")
        case DecodingError.keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)'" + Self.path(context.codingPath)
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return context.debugDescription + Self.path(context.codingPath)
        default:
            return "\(error)"
        }
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "" : " at " + codingPath.map(\.stringValue).joined(separator: ".")
    }
}

/// The header's JSON: tensor entries plus an optional `__metadata__` string map.
private struct RawHeader: Decodable {
    struct Entry: Decodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]
        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    var entries: [String: Entry] = [:]
    var metadata: [String: String] = [:]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                entries[key.stringValue] = try container.decode(Entry.self, forKey: key)
            }
        }
    }
}
