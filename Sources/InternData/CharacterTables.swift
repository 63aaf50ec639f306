// Character classes as lookup tables for the per-character loops of the data stages: Unicode properties as
// bitmaps, and per-byte tables.

/// A table of one byte per byte value (or per ASCII byte), allocated once and never freed, so the hot loops
/// index a pointer without an array's checks.
enum ByteTable {
    static func make(count: Int = 256, _ entry: (UInt8) -> UInt8) -> UnsafePointer<UInt8> {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: count)
        for c in 0..<count { table[c] = entry(UInt8(c)) }
        return UnsafePointer(table)
    }
}

/// A bit per scalar below U+3040 (the alphabets, punctuation and symbols of most text, and CJK punctuation)
/// and per halfwidth/fullwidth form (U+FF00-U+FFFF) for a Unicode property, so hot loops test a bit instead of
/// calling into the Unicode tables; other scalars are looked up. (12,608 lookups when built: about a
/// millisecond, where the whole plane took several.)
struct ScalarBitmap: Sendable {
    static let limit: UInt32 = 0x3040
    static let formsStart: UInt32 = 0xFF00
    let bits: [UInt64]
    let forms: [UInt64]
    let property: @Sendable (Unicode.Scalar) -> Bool

    init(_ property: @escaping @Sendable (Unicode.Scalar) -> Bool) {
        func bitmap(_ range: Range<UInt32>) -> [UInt64] {
            var bits = [UInt64](repeating: 0, count: range.count / 64)
            for v in range {
                let k = Int(v - range.lowerBound)
                if let s = Unicode.Scalar(v), property(s) { bits[k >> 6] |= 1 << UInt64(k & 63) }
            }
            return bits
        }
        bits = bitmap(0..<Self.limit)
        forms = bitmap(Self.formsStart..<0x10000)
        self.property = property
    }

    /// Whether scalar value v has the property (false for surrogates and values that are not scalars).
    @inline(__always) func contains(_ v: UInt32) -> Bool {
        if v < Self.limit { return (bits[Int(v >> 6)] >> UInt64(v & 63)) & 1 != 0 }
        if v >= Self.formsStart && v < 0x10000 {
            let k = v - Self.formsStart
            return (forms[Int(k >> 6)] >> UInt64(k & 63)) & 1 != 0
        }
        return Unicode.Scalar(v).map(property) ?? false
    }
}
