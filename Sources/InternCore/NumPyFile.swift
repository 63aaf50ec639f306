// NumPy .npy output, version 1.0 (numpy.lib.format): the magic "\x93NUMPY", version bytes, a
// little-endian u16 header length, a Python dict literal padded with spaces and ended by "\n" so the
// data starts on a 64-byte boundary, then the raw little-endian values. Reading is left to NumPy.
public import Foundation

public enum NumPyFile {
    /// A float32 array of `shape` in C order; `values.count` must equal the product of `shape`.
    public static func float32(_ values: [Float], shape: [Int]) -> Data {
        precondition(values.count == shape.reduce(1, *), "values do not fill shape \(shape)")
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.reserveCapacity(data.count + values.count * 4)
        values.withUnsafeBufferPointer { buffer in
            for v in buffer {
                withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) }
            }
        }
        return data
    }
}
