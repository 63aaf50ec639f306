// ggml block layouts against gguf-py's `dequantize` on the same bytes (Tests/Fixtures/gguf/quant-blocks.gguf,
// made by scripts/fixtures/make_quant_fixtures.py).
import Foundation
import InternCore
import InternKernels
import Testing

@Suite struct QuantizedBlocksTests {
    static let file = try! GGUFFile(
        path: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/gguf/quant-blocks.gguf").path)

    @Test(arguments: [("Q8_0", BlockQuantization.q8_0), ("Q4_0", .q4_0), ("Q4_1", .q4_1), ("Q4_K", .q4_K), ("Q6_K", .q6_K)])
    func dequantizationMatchesGGUFPy(name: String, type: BlockQuantization) throws {
        let blocks = try #require(Self.file.tensorInfo(name))
        let reference = try #require(Self.file.tensorInfo(name + ".f32"))
        #expect(blocks.dimensions == [512, 4] && reference.type == .f32)
        var got = [Float](repeating: .nan, count: blocks.elementCount)
        dequantize(&got, from: Self.file.data(of: blocks), type: type, offset: 0, count: got.count)
        let want = UnsafeBufferPointer(start: Self.file.data(of: reference).assumingMemoryBound(to: Float.self), count: got.count)
        let maxDiff = zip(got, want).map { abs($0 - $1) }.max()!
        // gguf-py computes in float32 too, with the same products; allow for operation order.
        #expect(maxDiff <= 1e-6 * (want.map(abs).max()! + 1), "\(name): max |diff| \(maxDiff)")
    }
}

/// `WeightMatrix.preparedForProducts` copies unpacked matrices into huge pages through `MappedFile.copy`:
/// the copy must hold the file's bytes exactly, over several 2 MiB pieces and an unaligned start.
@Suite struct ResidentWeightsTests {
    @Test func copyHoldsTheFileBytesAndProductsAgree() throws {
        let rows = 5003, cols = 1024, rowBytes = BlockQuantization.q8_0.rowBytes(cols), offset = 7
        var bytes = [UInt8](repeating: 0, count: offset + rows * rowBytes + 5)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in bytes.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 56)
        }
        // Q8_0 scales (f16) kept small and finite: every block's first two bytes.
        for r in 0..<rows {
            for b in 0..<(cols / 32) {
                let at = offset + r * rowBytes + b * 34
                bytes[at] = 0x00
                bytes[at + 1] = 0x20 | (bytes[at + 1] & 0x07)
            }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("resident-\(UUID().uuidString).bin").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try MappedFile(path: path)
        let mapped = WeightMatrix(data: file.base + offset, storage: .quantized(.q8_0), rows: rows, cols: cols, owner: file)
        let pool = ThreadPool(threadCount: 2)
        let prepared = mapped.preparedForProducts(pool: pool)
        #expect(WeightMatrix.copiesToHugePages == (prepared.data != mapped.data))
        #expect(memcmp(prepared.data, bytes.withUnsafeBytes { $0.baseAddress! + offset }, rows * rowBytes) == 0)

        let x = (0..<cols).map { Float(sin(Double($0) * 0.37)) }
        var want = [Float](repeating: 0, count: rows), got = want
        mapped.multiply(&want, x, tokens: 1, pool: pool)
        prepared.multiply(&got, x, tokens: 1, pool: pool)
        #expect(got == want)

        // Ranges outside the mapping are refused, not read.
        var sink = [UInt8](repeating: 0, count: 16)
        #expect(!file.copy(file.base + file.size - 8, bytes: 16, to: &sink))
        #expect(!file.copy(bytes.withUnsafeBytes { $0.baseAddress! }, bytes: 16, to: &sink))
        #expect(file.copy(file.base + offset, bytes: 16, to: &sink) && sink == Array(bytes[offset..<(offset + 16)]))
    }
}
