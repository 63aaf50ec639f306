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
