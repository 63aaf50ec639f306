// Pre-tokenization for byte-level BPE vocabularies (GGUF `tokenizer.ggml.model = gpt2`): the text is
// split into words before BPE, by the regex that `tokenizer.ggml.pre` names. The splits are hand-written
// ports of llama.cpp's (src/unicode.cpp `unicode_regex_split_custom_gpt2`, `_llama3`, `_qwen2`, and the
// std::regex patterns of llama-vocab.cpp run over its category-collapsed text), so words, and therefore
// ids, are the ones llama.cpp produces. Character classes come from the Unicode general category:
// \p{L} letters, \p{N} numbers, \p{P} punctuation, \s the White_Space property (llama.cpp's list).

/// Splits text into words the way llama.cpp does for one `tokenizer.ggml.pre` value.
struct ByteLevelPreTokenizer: Sendable {
    enum Step: Sendable, Equatable {
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
        case gpt2
        /// `(?i:'s|…)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
        case llama3(maxDigits: Int)
        /// `\p{N}`: every number character alone.
        case isolatedNumbers
        /// `\p{N}+`
        case numberRuns
        /// `[\p{P}\$\+<=>\^~\|]+`
        case punctuationRuns
        /// `[0-9][0-9][0-9]`
        case asciiDigitTriples
    }

    let steps: [Step]
    /// llama3-style vocabularies take a whole word that is already a token without merging.
    let ignoreMerges: Bool

    /// The pre-tokenizer names this implementation knows, for error messages.
    static let supportedNames = [
        "default", "gpt-2", "phi-2", "mpt", "olmo", "jais", "smollm", "starcoder", "refact", "command-r", "codeshell",
        "exaone", "minerva", "llama3", "llama-v3", "llama-bpe", "falcon3", "qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan",
        "chatglm-bpe",
    ]

    init?(name: String) {
        switch name {
        case "default", "":
            steps = [.punctuationRuns, .gpt2, .numberRuns, .asciiDigitTriples]
            ignoreMerges = false
        case "gpt-2", "phi-2", "mpt", "olmo", "jais":
            steps = [.gpt2]
            ignoreMerges = false
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva":
            steps = [.isolatedNumbers, .gpt2]
            ignoreMerges = false
        case "llama3", "llama-v3", "llama-bpe", "falcon3":
            steps = [.llama3(maxDigits: 3)]
            ignoreMerges = true
        case "chatglm-bpe":
            steps = [.llama3(maxDigits: 3)]
            ignoreMerges = false
        case "qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan":
            steps = [.llama3(maxDigits: 1)]
            ignoreMerges = false
        default:
            return nil
        }
    }

    /// Word boundaries as ranges of indices into `scalars`.
    func split(_ scalars: [UInt32]) -> [Range<Int>] {
        var ranges = scalars.isEmpty ? [] : [0..<scalars.count]
        for step in steps {
            var next: [Range<Int>] = []
            next.reserveCapacity(ranges.count * 2)
            for range in ranges { Self.apply(step, scalars, range, into: &next) }
            ranges = next
        }
        return ranges
    }

    // MARK: - Character classes

    struct Flags: OptionSet {
        let rawValue: UInt8
        static let inRange = Flags(rawValue: 1)
        static let letter = Flags(rawValue: 2)
        static let number = Flags(rawValue: 4)
        static let whitespace = Flags(rawValue: 8)
        static let punctuation = Flags(rawValue: 16)
    }

    /// Flags of every BMP scalar, computed once; astral scalars are classified on the fly.
    private static let bmpFlags: [Flags] = (0..<0x10000).map { classify(UInt32($0)) }

    static func classify(_ value: UInt32) -> Flags {
        guard let scalar = Unicode.Scalar(value) else { return .inRange }  // surrogates never reach here
        var flags: Flags = .inRange
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: flags.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber: flags.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            flags.insert(.punctuation)
        default: break
        }
        if scalar.properties.isWhitespace { flags.insert(.whitespace) }
        return flags
    }

    @inline(__always) static func flags(_ value: UInt32) -> Flags {
        value < 0x10000 ? bmpFlags[Int(value)] : classify(value)
    }

    // MARK: - Steps

    private static func apply(_ step: Step, _ c: [UInt32], _ range: Range<Int>, into out: inout [Range<Int>]) {
        switch step {
        case .gpt2: gpt2(c, range, &out)
        case .llama3(let maxDigits): llama3(c, range, maxDigits: maxDigits, &out)
        case .isolatedNumbers:
            matches(c, range, &out) { i in flags(c[i]).contains(.number) ? 1 : 0 }
        case .numberRuns:
            matches(c, range, &out) { i in
                var j = i
                while j < range.upperBound && flags(c[j]).contains(.number) { j += 1 }
                return j - i
            }
        case .punctuationRuns:
            let symbols: Set<UInt32> = Set("$+<=>^~|".unicodeScalars.map(\.value))
            matches(c, range, &out) { i in
                var j = i
                while j < range.upperBound && (flags(c[j]).contains(.punctuation) || symbols.contains(c[j])) { j += 1 }
                return j - i
            }
        case .asciiDigitTriples:
            matches(c, range, &out) { i in
                func digit(_ k: Int) -> Bool { k < range.upperBound && c[k] >= 0x30 && c[k] <= 0x39 }
                return digit(i) && digit(i + 1) && digit(i + 2) ? 3 : 0
            }
        }
    }

    /// Like a std::regex_iterator split: each match is a word, and so is each gap between matches.
    /// `matchLength(i)` is the length of a match starting at `i`, or 0.
    private static func matches(_ c: [UInt32], _ range: Range<Int>, _ out: inout [Range<Int>], _ matchLength: (Int) -> Int) {
        var gapStart = range.lowerBound
        var i = range.lowerBound
        while i < range.upperBound {
            let n = matchLength(i)
            if n > 0 {
                if i > gapStart { out.append(gapStart..<i) }
                out.append(i..<(i + n))
                i += n
                gapStart = i
            } else {
                i += 1
            }
        }
        if gapStart < range.upperBound { out.append(gapStart..<range.upperBound) }
    }

    private static let apostrophe = UInt32(UInt8(ascii: "'"))

    private static func contraction(_ c: [UInt32], _ pos: Int, _ end: Int, caseInsensitive: Bool) -> Int {
        guard c[pos] == apostrophe, pos + 1 < end else { return 0 }
        func lower(_ v: UInt32) -> UInt32 { caseInsensitive && v >= 0x41 && v <= 0x5A ? v + 32 : v }
        let a = lower(c[pos + 1])
        if "stmd".unicodeScalars.contains(where: { $0.value == a }) { return 2 }
        guard pos + 2 < end else { return 0 }
        let b = lower(c[pos + 2])
        let pairs: [(Character, Character)] = [("r", "e"), ("v", "e"), ("l", "l")]
        for (x, y) in pairs where a == x.unicodeScalars.first!.value && b == y.unicodeScalars.first!.value { return 3 }
        return 0
    }

    private static func gpt2(_ c: [UInt32], _ range: Range<Int>, _ out: inout [Range<Int>]) {
        let end = range.upperBound
        func f(_ i: Int) -> Flags { i < end ? flags(c[i]) : [] }
        var pos = range.lowerBound
        func add(_ to: Int) {
            if to > pos { out.append(pos..<to) }
            pos = to
        }
        while pos < end {
            let cpt = c[pos]
            let here = f(pos)
            let n = contraction(c, pos, end, caseInsensitive: false)
            if n > 0 {
                add(pos + n)
                continue
            }
            let isSpace = cpt == 0x20
            var f2 = isSpace ? f(pos + 1) : here
            if f2.contains(.letter) || f2.contains(.number) {
                let cls: Flags = f2.contains(.letter) ? .letter : .number
                var p = pos + (isSpace ? 1 : 0)
                while f2.contains(cls) {
                    p += 1
                    f2 = f(p)
                }
                add(p)
                continue
            }
            if f2.isDisjoint(with: [.whitespace, .letter, .number]) && f2.contains(.inRange) {
                var p = pos + (isSpace ? 1 : 0)
                while f2.isDisjoint(with: [.whitespace, .letter, .number]) && f2.contains(.inRange) {
                    p += 1
                    f2 = f(p)
                }
                add(p)
                continue
            }
            var spaces = 0
            while f(pos + spaces).contains(.whitespace) { spaces += 1 }
            if spaces > 1 && pos + spaces < end {
                add(pos + spaces - 1)  // \s+(?!\S): leave the last space to start the next word
                continue
            }
            if spaces > 0 {
                add(pos + spaces)
                continue
            }
            add(pos + 1)
        }
    }

    private static func llama3(_ c: [UInt32], _ range: Range<Int>, maxDigits: Int, _ out: inout [Range<Int>]) {
        let end = range.upperBound
        func f(_ i: Int) -> Flags { i < end ? flags(c[i]) : [] }
        func isCRLF(_ i: Int) -> Bool { i < end && (c[i] == 0x0D || c[i] == 0x0A) }
        var pos = range.lowerBound
        func add(_ to: Int) {
            if to > pos { out.append(pos..<to) }
            pos = to
        }
        while pos < end {
            let cpt = c[pos]
            let here = f(pos)
            let n = contraction(c, pos, end, caseInsensitive: true)
            if n > 0 {
                add(pos + n)
                continue
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(isCRLF(pos) || here.contains(.number)) && (here.contains(.letter) || f(pos + 1).contains(.letter)) {
                var p = pos + 1
                while f(p).contains(.letter) { p += 1 }
                add(p)
                continue
            }
            // \p{N}{1,maxDigits}
            if here.contains(.number) {
                var p = pos
                var start = pos
                while f(p).contains(.number) {
                    p += 1
                    if p - start >= maxDigits {
                        add(p)
                        start = p
                    }
                }
                add(p)
                continue
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            var f2 = cpt == 0x20 ? f(pos + 1) : here
            if f2.isDisjoint(with: [.whitespace, .letter, .number]) && here.contains(.inRange) {
                var p = pos + (cpt == 0x20 ? 1 : 0)
                while f2.isDisjoint(with: [.whitespace, .letter, .number]) && f2.contains(.inRange) {
                    p += 1
                    f2 = f(p)
                }
                while isCRLF(p) { p += 1 }
                add(p)
                continue
            }
            var spaces = 0
            var lastLineBreakEnd = 0
            while f(pos + spaces).contains(.whitespace) {
                if isCRLF(pos + spaces) { lastLineBreakEnd = pos + spaces + 1 }
                spaces += 1
            }
            if lastLineBreakEnd > 0 {  // \s*[\r\n]+
                add(lastLineBreakEnd)
                continue
            }
            if spaces > 1 && pos + spaces < end {
                add(pos + spaces - 1)
                continue
            }
            if spaces > 0 {
                add(pos + spaces)
                continue
            }
            add(pos + 1)
        }
    }
}
