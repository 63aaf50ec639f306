import InternKernels
import Testing

@Suite struct QuantizeTests {
    @Test(arguments: [BlockQuantization.q8_0, .q4_0])
    func roundTripErrorIsBounded(type: BlockQuantization) {
        // Half a step; Q4_0 maps the largest magnitude to -8, so values of the other sign near it clamp
        // at +7 and may be off by up to one step (ggml's asymmetry).
        let steps: Float = type == .q8_0 ? 0.5 : 1
        var rng = SplitMix64(seed: 21)
        let cols = 96
        let x = (0..<cols).map { i in rng.nextFloat() * Float(i % 7 + 1) }
        var bytes = [UInt8](repeating: 0, count: type.rowBytes(cols))
        bytes.withUnsafeMutableBytes { quantizeRow(x, count: cols, type: type, into: $0.baseAddress!) }
        bytes.withUnsafeBytes { w in
            for b in 0..<(cols / 32) {
                let d = abs(Float(Float16(bitPattern: UInt16(w[b * type.blockBytes]) | UInt16(w[b * type.blockBytes + 1]) << 8)))
                #expect(d > 0)
                for i in (b * 32)..<(b * 32 + 32) {
                    let back = quantizedElementReference(w.baseAddress!, type: type, index: i)
                    // Plus the f16 rounding of the scale over the 127 (or 8) steps.
                    #expect(abs(back - x[i]) <= d * steps + d * 0.01 + 1e-6, "\(type) weight \(i): \(back) vs \(x[i])")
                }
            }
        }
    }

    @Test func knownBlocks() {
        // q8_0 of 0, 1, …, 31: d = 31/127, q_i = round(i·127/31). q4_0 of the same with -32 at the end:
        // the value of largest magnitude, -32, maps to -8 (d = 4), so 0 → 8, 15 → 12, -32 → 0.
        var x = (0..<32).map(Float.init)
        var q8 = [UInt8](repeating: 0, count: 34)
        q8.withUnsafeMutableBytes { quantizeRow(x, count: 32, type: .q8_0, into: $0.baseAddress!) }
        #expect(q8[2] == 0 && q8[3] == 4 && q8[33] == 127)
        #expect(Float16(bitPattern: UInt16(q8[0]) | UInt16(q8[1]) << 8) == Float16(Float(31) / 127))
        x[31] = -32
        var q4 = [UInt8](repeating: 0, count: 18)
        q4.withUnsafeMutableBytes { quantizeRow(x, count: 32, type: .q4_0, into: $0.baseAddress!) }
        #expect(Float16(bitPattern: UInt16(q4[0]) | UInt16(q4[1]) << 8) == 4)
        #expect(q4[2] & 0xF == 8)  // weight 0
        #expect(q4[17] >> 4 == 0)  // weight 31 = -32
        #expect(q4[17] & 0xF == 12)  // weight 15: Int8(15/4 + 8.5) = 12
    }
}
