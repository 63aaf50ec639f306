// Weight quantization into ggml's Q8_0 and Q4_0 blocks (the layouts `matMulQuantized` reads; see
// QuantizedMatMul.swift), as ggml-quants.c `quantize_row_q8_0_ref` / `quantize_row_q4_0_ref` compute them,
// so a checkpoint quantized by `intern quantize` holds the same bytes llama-quantize would write for the
// same f32 values. Not a hot path (run once per checkpoint): plain scalar code, no naive twin needed;
// the tests check the round trip against `quantizedElementReference`.

/// Quantizes `count` weights (a multiple of 32) into `type` blocks at `out` (type.rowBytes(count) bytes).
public func quantizeRow(_ x: UnsafePointer<Float>, count: Int, type: BlockQuantization, into out: UnsafeMutableRawPointer) {
    precondition(type == .q8_0 || type == .q4_0, "quantization to \(type) is not supported")
    precondition(count % 32 == 0, "row length \(count) is not a multiple of 32")
    for b in 0..<(count / 32) {
        let xb = x + b * 32
        let block = out + b * type.blockBytes
        switch type {
        case .q8_0:
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(xb[i])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            block.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
            for i in 0..<32 { block.storeBytes(of: Int8((xb[i] * id).rounded()), toByteOffset: 2 + i, as: Int8.self) }
        default:
            // The signed value of largest magnitude maps to -8, so d carries its sign (ggml).
            var amax: Float = 0, signedMax: Float = 0
            for i in 0..<32 where abs(xb[i]) > amax {
                amax = abs(xb[i])
                signedMax = xb[i]
            }
            let d = signedMax / -8
            let id: Float = d != 0 ? 1 / d : 0
            block.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
            func q(_ v: Float) -> UInt8 { UInt8(min(15, Int8(v * id + 8.5))) }
            for i in 0..<16 {
                block.storeBytes(of: q(xb[i]) | (q(xb[16 + i]) << 4), toByteOffset: 2 + i, as: UInt8.self)
            }
        }
    }
}
