// Writes safetensors files: the header (names sorted, 8-byte aligned with trailing spaces, as the
// `safetensors` library pads it) and then each tensor's bytes, produced one tensor at a time by a fill
// closure so multi-gigabyte random checkpoints stream to disk without being held in memory.
public import Foundation

/// One tensor to write: its name, dtype and shape.
public struct TensorSpec: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
    public var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
}

public enum SafeTensorsWriter {
    /// Writes `specs` (in this order in the data section) to `url`; `fill(spec, bytes)` provides each
    /// tensor's little-endian bytes into a zeroed buffer of exactly `spec.byteCount` bytes.
    public static func write(
        to url: URL, tensors specs: [TensorSpec], metadata: [String: String] = ["format": "pt"],
        fill: (TensorSpec, UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(quote($0)):\(quote(metadata[$0]!))" }
            parts.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for spec in specs {
            let end = offset + spec.byteCount
            parts.append(
                "\(quote(spec.name)):{\"dtype\":\"\(spec.dtype.rawValue)\",\"shape\":[\(spec.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}"
            )
            offset = end
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var length = UInt64(headerBytes.count).littleEndian
        try handle.write(contentsOf: Data(bytes: &length, count: 8))
        try handle.write(contentsOf: Data(headerBytes))
        for spec in specs {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(spec.byteCount, 1), alignment: 64)
            defer { buffer.deallocate() }
            let body = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<spec.byteCount])
            body.initializeMemory(as: UInt8.self, repeating: 0)
            try fill(spec, body)
            try handle.write(contentsOf: Data(bytesNoCopy: body.baseAddress ?? buffer.baseAddress!, count: spec.byteCount, deallocator: .none))
        }
    }

    private static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
