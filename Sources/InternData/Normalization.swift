// Unicode NFC through Foundation (precomposedStringWithCanonicalMapping exists on Linux and macOS).
import Foundation

extension TextNormalizer {
    static func nfc(_ s: String) -> String {
        // ASCII is always in NFC; skip the conversion for it.
        if s.utf8.allSatisfy({ $0 < 0x80 }) { return s }
        return s.precomposedStringWithCanonicalMapping
    }
}
