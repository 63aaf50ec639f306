import Foundation
import InternCore
import Testing

@Suite struct NumPyFileTests {
    @Test func headerIsAlignedAndDescribesTheArray() throws {
        let data = NumPyFile.float32([1, -2, 0.5, 3, 4, 5], shape: [2, 3])
        #expect(Array(data.prefix(8)) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"))
        #expect(header.hasSuffix("\n"))
        #expect(data.count == 10 + headerLength + 24)
        let values = data[(10 + headerLength)...].withUnsafeBytes { raw in
            (0..<6).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        #expect(values == [1, -2, 0.5, 3, 4, 5])
        #expect(String(decoding: NumPyFile.float32([7], shape: [1]).dropFirst(10), as: UTF8.self).contains("'shape': (1,)"))
    }
}
