// Reader for GGUF files (versions 2 and 3) over mmap: header, metadata key/values of every type
// (arrays included), tensor infos and the aligned data section. Layout as llama.cpp's gguf.c and
// gguf-py/gguf/gguf_reader.py read it: little-endian; strings are a u64 length plus bytes.
// Everything is validated before use: counts and lengths against the bytes left, tensor types,
// dimensions, alignment, and that each tensor's bytes lie inside the file, so a truncated or
// corrupt file throws `CheckpointError.malformedGGUF` naming the key or tensor instead of trapping.

public import Foundation

/// A metadata value. Strings are kept as bytes: GGUF does not promise valid UTF-8.
public enum GGUFValue: Sendable, Equatable {
    case uint(UInt64)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case string([UInt8])
    case array([GGUFValue])

    public var stringValue: String? {
        if case .string(let b) = self { return String(decoding: b, as: UTF8.self) }
        return nil
    }

    public var intValue: Int? {
        switch self {
        case .uint(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int(let v): return Int(v)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .float(let v): return v
        case .uint(let v): return Double(v)
        case .int(let v): return Double(v)
        default: return nil
        }
    }

    public var boolValue: Bool? {
        switch self {
        case .bool(let b): return b
        case .uint(let v): return v != 0
        case .int(let v): return v != 0
        default: return nil
        }
    }

    public var arrayValue: [GGUFValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
}

/// ggml tensor types that can appear in a GGUF file, with their block layout.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case bf16 = 30

    /// Elements per block.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K: return 256
        }
    }

    /// Bytes per block (ggml's `type_size`).
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q8_1: return 36
        case .q2_K: return 84
        case .q3_K: return 110
        case .q4_K: return 144
        case .q5_K: return 176
        case .q6_K: return 210
        case .q8_K: return 292
        }
    }

    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q8_1: return "Q8_1"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .q8_K: return "Q8_K"
        }
    }
}

/// Where one tensor sits in a GGUF file. `dimensions` are ggml's `ne`: the first is the row length.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: GGMLType
    public let dimensions: [Int]
    /// Absolute byte range in the file.
    public let byteRange: Range<Int>

    public var elementCount: Int { dimensions.reduce(1, *) }
}

/// A mapped, validated GGUF file.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    private let file: MappedFile
    private let index: [String: Int]
    private let tensorIndex: [String: Int]

    public var fileName: String { (path as NSString).lastPathComponent }

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.file = file
        self.path = path
        let name = (path as NSString).lastPathComponent
        var r = GGUFCursor(base: file.base, size: file.size, file: name)
        guard file.size >= 4, try r.u32() == 0x4655_4747 else {
            throw CheckpointError.malformedGGUF(file: name, offset: 0, reason: "bad magic: not a GGUF file")
        }
        version = try r.u32()
        guard version == 2 || version == 3 else {
            throw CheckpointError.malformedGGUF(file: name, offset: 4, reason: "unsupported GGUF version \(version) (2 and 3 are supported)")
        }
        let tensorCount = try r.count(what: "tensor count", minimumBytesEach: 8 + 4 + 4 + 8)
        let kvCount = try r.count(what: "metadata count", minimumBytesEach: 8 + 4)
        var kvs: [(key: String, value: GGUFValue)] = []
        kvs.reserveCapacity(kvCount)
        var keyIndex: [String: Int] = [:]
        for _ in 0..<kvCount {
            let key = String(decoding: try r.string(what: "metadata key"), as: UTF8.self)
            let type = try r.u32()
            let value = try r.value(type: type, key: key, depth: 0)
            if keyIndex[key] != nil { throw r.error("duplicate metadata key '\(key)'") }
            keyIndex[key] = kvs.count
            kvs.append((key, value))
        }
        metadata = kvs
        index = keyIndex

        var alignment = 32
        if let a = keyIndex["general.alignment"].map({ kvs[$0].value }) {
            guard let v = a.intValue, v > 0, v & (v - 1) == 0 else {
                throw CheckpointError.malformedGGUF(file: name, offset: 0, reason: "general.alignment \(a) is not a power of two")
            }
            alignment = v
        }
        self.alignment = alignment

        var infos: [(name: String, type: GGMLType, dims: [Int], offset: UInt64)] = []
        infos.reserveCapacity(tensorCount)
        for _ in 0..<tensorCount {
            let tensorName = String(decoding: try r.string(what: "tensor name"), as: UTF8.self)
            let nDims = try r.u32()
            guard (1...4).contains(nDims) else { throw r.error("tensor '\(tensorName)' has \(nDims) dimensions (1 to 4 allowed)") }
            var dims: [Int] = []
            for _ in 0..<nDims {
                let d = try r.u64()
                guard d > 0, d < 1 << 40 else { throw r.error("tensor '\(tensorName)' has dimension \(d)") }
                dims.append(Int(d))
            }
            let rawType = try r.u32()
            guard let type = GGMLType(rawValue: rawType) else {
                throw r.error("tensor '\(tensorName)' has unknown ggml type \(rawType)")
            }
            guard dims[0] % type.blockSize == 0 else {
                throw r.error("tensor '\(tensorName)': row length \(dims[0]) is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            infos.append((tensorName, type, dims, try r.u64()))
        }
        let dataStart = (r.position + alignment - 1) / alignment * alignment
        var tensors: [GGUFTensorInfo] = []
        var byName: [String: Int] = [:]
        for info in infos {
            let elements = info.dims.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
            let bytes = elements / info.type.blockSize * info.type.blockBytes
            guard info.offset % UInt64(alignment) == 0 else {
                throw CheckpointError.malformedGGUF(
                    file: name, offset: dataStart, reason: "tensor '\(info.name)' offset \(info.offset) is not aligned to \(alignment)")
            }
            guard info.offset <= UInt64(file.size), dataStart + Int(info.offset) + bytes <= file.size else {
                throw CheckpointError.malformedGGUF(
                    file: name, offset: dataStart,
                    reason:
                        "tensor '\(info.name)' (\(info.type.name) \(info.dims), \(bytes) bytes at data offset \(info.offset)) reaches past the end of the file (\(file.size) bytes): truncated?"
                )
            }
            if byName[info.name] != nil { throw CheckpointError.malformedGGUF(file: name, offset: dataStart, reason: "duplicate tensor '\(info.name)'") }
            byName[info.name] = tensors.count
            let start = dataStart + Int(info.offset)
            tensors.append(GGUFTensorInfo(name: info.name, type: info.type, dimensions: info.dims, byteRange: start..<(start + bytes)))
        }
        self.tensors = tensors
        tensorIndex = byName
    }

    public subscript(key: String) -> GGUFValue? {
        index[key].map { metadata[$0].value }
    }

    public func tensorInfo(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor as stored (blocks for quantized types); valid while this object lives.
    public func data(of info: GGUFTensorInfo) -> UnsafeRawPointer {
        file.base + info.byteRange.lowerBound
    }

    /// A metadata string, or an error naming the key.
    public func requireString(_ key: String) throws -> String {
        guard let v = self[key] else { throw CheckpointError.malformedGGUF(file: fileName, offset: 0, reason: "metadata key '\(key)' is missing") }
        guard let s = v.stringValue else { throw CheckpointError.malformedGGUF(file: fileName, offset: 0, reason: "metadata key '\(key)' is not a string") }
        return s
    }

    /// A metadata integer, or an error naming the key.
    public func requireInt(_ key: String) throws -> Int {
        guard let v = self[key] else { throw CheckpointError.malformedGGUF(file: fileName, offset: 0, reason: "metadata key '\(key)' is missing") }
        guard let i = v.intValue else { throw CheckpointError.malformedGGUF(file: fileName, offset: 0, reason: "metadata key '\(key)' is not an integer") }
        return i
    }
}

/// Bounds-checked little-endian reads over the mapping.
private struct GGUFCursor {
    let base: UnsafeRawPointer
    let size: Int
    let file: String
    var position = 0
    static let maxDepth = 4

    func error(_ reason: String) -> CheckpointError {
        .malformedGGUF(file: file, offset: position, reason: reason)
    }

    mutating func need(_ n: Int) throws {
        guard n >= 0, size - position >= n else { throw error("unexpected end of file (needed \(n) more bytes): truncated?") }
    }

    mutating func u8() throws -> UInt8 {
        try need(1)
        defer { position += 1 }
        return base.load(fromByteOffset: position, as: UInt8.self)
    }

    mutating func u32() throws -> UInt32 {
        try need(4)
        defer { position += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    mutating func u64() throws -> UInt64 {
        try need(8)
        defer { position += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    /// A count that must fit in the bytes left, each element taking at least `minimumBytesEach`.
    mutating func count(what: String, minimumBytesEach: Int) throws -> Int {
        let n = try u64()
        guard n <= UInt64(size - position) / UInt64(max(1, minimumBytesEach)) else {
            throw error("\(what) \(n) is larger than the file can hold: truncated or corrupt")
        }
        return Int(n)
    }

    mutating func string(what: String) throws -> [UInt8] {
        let n = try u64()
        guard n <= UInt64(size - position) else { throw error("\(what) of length \(n) runs past the end of the file") }
        let bytes = [UInt8](UnsafeRawBufferPointer(start: base + position, count: Int(n)))
        position += Int(n)
        return bytes
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint(UInt64(try u8()))
        case 1: return .int(Int64(Int8(bitPattern: try u8())))
        case 2:
            try need(2)
            defer { position += 2 }
            return .uint(UInt64(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt16.self))))
        case 3:
            try need(2)
            defer { position += 2 }
            return .int(Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: position, as: Int16.self))))
        case 4: return .uint(UInt64(try u32()))
        case 5: return .int(Int64(Int32(bitPattern: try u32())))
        case 6: return .float(Double(Float(bitPattern: try u32())))
        case 7:
            let b = try u8()
            guard b <= 1 else { throw error("metadata key '\(key)': bool value \(b)") }
            return .bool(b == 1)
        case 8: return .string(try string(what: "value of '\(key)'"))
        case 9:
            guard depth < Self.maxDepth else { throw error("metadata key '\(key)': arrays nested too deeply") }
            let elementType = try u32()
            let minimum = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8][Int(elementType)]
            guard let minimum else { throw error("metadata key '\(key)': unknown array element type \(elementType)") }
            let n = try count(what: "length of array '\(key)'", minimumBytesEach: minimum)
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        case 10: return .uint(try u64())
        case 11: return .int(Int64(bitPattern: try u64()))
        case 12: return .float(Double(bitPattern: try u64()))
        default: throw error("metadata key '\(key)' has unknown value type \(type)")
        }
    }
}

extension GGUFFile {
    /// Tensor `name` as a weight matrix (ggml dimensions [cols, rows, ...] → rows × cols), read in place.
    /// - Throws: `CheckpointError` if the tensor is missing or of a type the kernels cannot read.
    public func matrix(_ name: String) throws -> WeightMatrix {
        guard let info = tensorInfo(name) else { throw CheckpointError.missingTensor(file: fileName, tensor: name) }
        let storage: WeightStorage
        switch info.type {
        case .f32: storage = .float(.f32)
        case .f16: storage = .float(.f16)
        case .bf16: storage = .float(.bf16)
        case .q8_0: storage = .quantized(.q8_0)
        case .q4_0: storage = .quantized(.q4_0)
        case .q4_1: storage = .quantized(.q4_1)
        case .q4_K: storage = .quantized(.q4_K)
        case .q6_K: storage = .quantized(.q6_K)
        default:
            throw CheckpointError.unsupportedDType(file: fileName, tensor: name, dtype: info.type.name)
        }
        return WeightMatrix(
            data: data(of: info), storage: storage, rows: info.dimensions.dropFirst().reduce(1, *), cols: info.dimensions[0],
            owner: file)  // the mapping, which is what a matrix keeps alive (and may release pages of)
    }
}
