// One pass over a document's UTF-8 that gathers what the heuristic rules read: lines, words (whitespace
// split for alphabetic scripts; one token per Han character for Chinese, since Chinese has no spaces), word
// hashes for the n-gram repetition rules, and character classes.

/// Statistics of one document's text that the cleaning rules read.
struct TextStats {
    struct Line: Equatable {
        var chars: Int
        var words: Int
        var endsWithPunctuation: Bool
        var isBullet: Bool
        var endsWithEllipsis: Bool
        var hash: UInt64
        var isEmpty: Bool { chars == 0 }
    }

    var chinese: Bool
    var lines: [Line] = []
    var paragraphs: [(hash: UInt64, chars: Int)] = []
    /// Per word (token): a hash of its lower-cased core, and its length in characters.
    var wordHashes: [UInt64] = []
    var wordLengths: [Int32] = []
    var words = 0
    var alphaWords = 0
    var symbolTokens = 0  // "#" words and ellipses (Gopher's symbol-to-word ratio)
    var stopWordHits = 0
    var hanChars = 0
    var chars = 0
    var nonPrintable = 0
    var wordChars = 0  // sum of word core lengths

    static let latinPunctuationEnd: Set<UInt32> = [0x2E, 0x21, 0x3F, 0x22, 0x27, 0x2019, 0x201D, 0x3A, 0x29]
    static let chinesePunctuationEnd: Set<UInt32> = [
        0x3002, 0xFF01, 0xFF1F, 0xFF1B, 0x2026, 0x201D, 0x300D, 0x300F, 0xFF09, 0x2E, 0x21, 0x3F, 0xFF1A, 0x22,
    ]
    static let bulletStarts: Set<UInt32> = [0x2022, 0x2023, 0x25AA, 0x25CF, 0x00B7, 0x2043, 0x25E6, 0x2013, 0x2D, 0x2A, 0x3E]

    // The sets above as switches: a Set<UInt32> lookup hashes with SipHash, and these run once per line.
    @inline(__always) static func isLatinPunctuationEnd(_ v: UInt32) -> Bool {
        switch v {
        case 0x2E, 0x21, 0x3F, 0x22, 0x27, 0x2019, 0x201D, 0x3A, 0x29: return true
        default: return false
        }
    }

    @inline(__always) static func isChinesePunctuationEnd(_ v: UInt32) -> Bool {
        switch v {
        case 0x3002, 0xFF01, 0xFF1F, 0xFF1B, 0x2026, 0x201D, 0x300D, 0x300F, 0xFF09, 0x2E, 0x21, 0x3F, 0xFF1A, 0x22: return true
        default: return false
        }
    }

    @inline(__always) static func isBulletStart(_ v: UInt32) -> Bool {
        switch v {
        case 0x2022, 0x2023, 0x25AA, 0x25CF, 0x00B7, 0x2043, 0x25E6, 0x2013, 0x2D, 0x2A, 0x3E: return true
        default: return false
        }
    }

    /// Gathers the statistics of `text`; `stopWords` holds the FNV hashes of the language's stop words.
    init(_ text: String, chinese: Bool, stopWords: Set<UInt64>) {
        self.init(text, chinese: chinese, stopWords: LanguageTagger.StopWordTable([stopWords]))
    }

    /// `asciiFastPath: false` sends ASCII through the general per-scalar steps too (the reference in tests).
    init(_ text: String, chinese: Bool, stopWords: LanguageTagger.StopWordTable, asciiFastPath: Bool = true) {
        self.chinese = chinese
        var text = text
        text.withUTF8 { u in
            // Words go to buffers of the most a text can hold, n / 2 + 1 (each needs a byte and a separator, or
            // is a three-byte Han character), then into the arrays: appending checked uniqueness and capacity
            // per word.
            let capacity = u.count / 2 + 1
            let hashes = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
            let lengths = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
            defer {
                hashes.deallocate()
                lengths.deallocate()
            }
            Self.asciiTable.withUnsafeBufferPointer { table in
                scan(u, stopWords: stopWords, asciiTable: table, asciiFastPath: asciiFastPath, hashes: hashes, lengths: lengths)
            }
            wordHashes = Array(UnsafeBufferPointer(start: hashes, count: words))
            wordLengths = Array(UnsafeBufferPointer(start: lengths, count: words))
        }
    }

    static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325
    static let fnvPrime: UInt64 = 0x100_0000_01b3

    @inline(__always) static func isASCIIAlnum(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A)
    }

    /// FNV-1a of a word's bytes, ASCII lower-cased.
    static func wordHash(_ s: String) -> UInt64 {
        var h = fnvOffset
        for c in s.utf8 { h = (h ^ UInt64((c >= 0x41 && c <= 0x5A) ? c | 0x20 : c)) &* fnvPrime }
        return h
    }

    // Per ASCII byte: its lower-case form (low byte) and class bits (high byte), so the ASCII path, which is
    // most bytes of most pages, tests one table entry instead of a chain of ranges.
    static let asciiNewline: UInt16 = 0x100, asciiSpace: UInt16 = 0x200, asciiNonPrintable: UInt16 = 0x400
    static let asciiAlnum: UInt16 = 0x800
    static let asciiTable: [UInt16] = (0..<128).map { (c: Int) -> UInt16 in
        let b = UInt8(c)
        var entry = UInt16((b >= 0x41 && b <= 0x5A) ? b | 0x20 : b)
        if b == 0x0A { entry |= asciiNewline }
        if b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0B || b == 0x0C { entry |= asciiSpace }
        if (b < 0x20 && b != 0x09 && b != 0x0D && b != 0x0A) || b == 0x7F { entry |= asciiNonPrintable }
        if isASCIIAlnum(b) { entry |= asciiAlnum }
        return entry
    }

    private mutating func scan(
        _ u: UnsafeBufferPointer<UInt8>, stopWords: LanguageTagger.StopWordTable, asciiTable: UnsafeBufferPointer<UInt16>,
        asciiFastPath: Bool, hashes: UnsafeMutablePointer<UInt64>, lengths: UnsafeMutablePointer<Int32>
    ) {
        var i = 0
        let n = u.count
        let chinese = self.chinese
        // Counters live in locals (written back at the end): as stored properties of self they were loaded and
        // stored around every append.
        var words = 0, alphaWords = 0, symbolTokens = 0, stopWordHits = 0
        var hanChars = 0, chars = 0, nonPrintable = 0, wordChars = 0
        // Current line state.
        var lineChars = 0, lineWords = 0
        var lineHash = Self.fnvOffset
        var firstScalar: UInt32 = 0
        var lastScalars: (UInt32, UInt32, UInt32) = (0, 0, 0)  // the last three non-space scalars
        var paraHash = Self.fnvOffset
        var paraChars = 0
        // Current word state.
        var wordHash = Self.fnvOffset
        var wordLen = 0
        var wordHasAlpha = false
        var inWord = false
        var pendingPunct = 0  // trailing punctuation inside a whitespace token (not part of the core)
        var tokenAllDots = true

        func endWord() {
            if inWord {
                if wordLen > 0 {
                    hashes[words] = wordHash
                    lengths[words] = Int32(wordLen)
                    words += 1
                    if wordHasAlpha { alphaWords += 1 }
                    wordChars += wordLen
                    if stopWords.lookup(wordHash) != 0 { stopWordHits += 1 }
                    lineWords += 1
                } else if tokenAllDots && pendingPunct >= 3 {
                    symbolTokens += 1
                }
            }
            inWord = false
            wordHash = Self.fnvOffset
            wordLen = 0
            wordHasAlpha = false
            pendingPunct = 0
            tokenAllDots = true
        }

        func endLine() {
            endWord()
            let trimmedEnd = lastScalars.2
            let isEllipsis = trimmedEnd == 0x2026 || (lastScalars.0 == 0x2E && lastScalars.1 == 0x2E && lastScalars.2 == 0x2E)
            let punct = chinese ? Self.isChinesePunctuationEnd(trimmedEnd) : Self.isLatinPunctuationEnd(trimmedEnd)
            if lineChars > 0 {
                lines.append(
                    Line(
                        chars: lineChars, words: lineWords, endsWithPunctuation: punct,
                        isBullet: Self.isBulletStart(firstScalar), endsWithEllipsis: isEllipsis, hash: lineHash))
                paraHash = (paraHash ^ lineHash) &* Self.fnvPrime
                paraChars += lineChars
            } else if paraChars > 0 {
                paragraphs.append((paraHash, paraChars))
                paraHash = Self.fnvOffset
                paraChars = 0
            }
            lineChars = 0
            lineWords = 0
            lineHash = Self.fnvOffset
            firstScalar = 0
            lastScalars = (0, 0, 0)
        }

        while i < n {
            let c = u[i]
            if c < 0x80 && asciiFastPath {
                // The same steps as below for an ASCII scalar, with its classes from the table.
                i += 1
                let entry = asciiTable[Int(c)]
                if entry & Self.asciiNewline != 0 { endLine(); continue }
                chars += 1
                if entry & Self.asciiNonPrintable != 0 { nonPrintable += 1 }
                if entry & Self.asciiSpace != 0 {
                    endWord()
                    if lineChars > 0 { lineChars += 1 }
                    continue
                }
                let v = UInt32(c)
                if lineChars == 0 { firstScalar = v }
                if !chinese {
                    // The whole run of ASCII up to the next space, newline or non-ASCII byte, in one loop over a
                    // few locals: the state that the word and line ends share lives in memory, and carrying the
                    // two hashes through it cost a store and a reload per byte.
                    var lh = lineHash
                    var wh = wordHash, wl = wordLen, pp = pendingPunct
                    var alpha = wordHasAlpha, dots = tokenAllDots
                    var np = 0, sym = 0
                    var k = i - 1  // c, which chars and nonPrintable already count
                    repeat {
                        let b = u[k]
                        let e = asciiTable[Int(b)]
                        lh = (lh ^ UInt64(b)) &* Self.fnvPrime
                        np &+= Int(truncatingIfNeeded: (e >> 10) & 1)
                        dots = dots && b == 0x2E
                        if e & Self.asciiAlnum != 0 {
                            pp = 0
                            wh = (wh ^ UInt64(e & 0xFF)) &* Self.fnvPrime
                            wl &+= 1
                            alpha = alpha || b >= 0x41
                        } else {
                            if b == 0x23 && wl == 0 { sym &+= 1 }
                            pp &+= 1
                        }
                        k += 1
                    } while k < n && u[k] < 0x80 && asciiTable[Int(u[k])] & (Self.asciiNewline | Self.asciiSpace) == 0
                    let run = k - (i - 1)
                    chars += run - 1
                    nonPrintable += np - Int(truncatingIfNeeded: (entry >> 10) & 1)
                    lineChars += run
                    symbolTokens += sym
                    lineHash = lh
                    (wordHash, wordLen, pendingPunct, wordHasAlpha, tokenAllDots) = (wh, wl, pp, alpha, dots)
                    inWord = true
                    switch run {
                    case 1: lastScalars = (lastScalars.1, lastScalars.2, v)
                    case 2: lastScalars = (lastScalars.2, UInt32(u[k - 2]), UInt32(u[k - 1]))
                    default: lastScalars = (UInt32(u[k - 3]), UInt32(u[k - 2]), UInt32(u[k - 1]))
                    }
                    i = k
                    continue
                }
                lineChars += 1
                lineHash = (lineHash ^ UInt64(v)) &* Self.fnvPrime
                lastScalars = (lastScalars.1, lastScalars.2, v)
                // Chinese: ASCII letters and digits make words; anything else ends one.
                if entry & Self.asciiAlnum != 0 {
                    inWord = true
                    wordHash = (wordHash ^ UInt64(entry & 0xFF)) &* Self.fnvPrime
                    wordLen += 1
                    if c >= 0x41 { wordHasAlpha = true }
                } else {
                    endWord()
                    if c == 0x23 { symbolTokens += 1 }
                }
                continue
            }
            // Decode one scalar.
            var v = UInt32(c)
            var len = 1
            if c >= 0x80 {
                if c >= 0xF0, i + 3 < n {
                    v = (UInt32(c & 0x07) << 18) | (UInt32(u[i + 1] & 0x3F) << 12) | (UInt32(u[i + 2] & 0x3F) << 6) | UInt32(u[i + 3] & 0x3F); len = 4
                } else if c >= 0xE0, i + 2 < n {
                    v = (UInt32(c & 0x0F) << 12) | (UInt32(u[i + 1] & 0x3F) << 6) | UInt32(u[i + 2] & 0x3F); len = 3
                } else if c >= 0xC0, i + 1 < n {
                    v = (UInt32(c & 0x1F) << 6) | UInt32(u[i + 1] & 0x3F); len = 2
                }
            }
            i += len
            if v == 0x0A { endLine(); continue }
            chars += 1
            let isSpace = v == 0x20 || v == 0x09 || v == 0x0D || v == 0xA0 || v == 0x3000 || v == 0x0B || v == 0x0C
            if (v < 0x20 && v != 0x09 && v != 0x0D) || v == 0xFFFD || (v >= 0x7F && v < 0xA0) { nonPrintable += 1 }
            if isSpace {
                endWord()
                if lineChars > 0 { lineChars += 1 }
                continue
            }
            if lineChars == 0 { firstScalar = v }
            lineChars += 1
            lineHash = (lineHash ^ UInt64(v)) &* Self.fnvPrime
            lastScalars = (lastScalars.1, lastScalars.2, v)
            let han = LanguageTagger.isHan(v)
            if han { hanChars += 1 }
            if chinese {
                if han {
                    endWord()
                    inWord = true
                    wordHash = (Self.fnvOffset ^ UInt64(v)) &* Self.fnvPrime
                    wordLen = 1
                    wordHasAlpha = true
                    endWord()
                    continue
                }
                let alnum = v < 0x80 ? Self.isASCIIAlnum(UInt8(v)) : (v < 0x3000 || v >= 0xFF10 && v <= 0xFF5A)
                if alnum {
                    inWord = true
                    let lower = (v >= 0x41 && v <= 0x5A) ? v | 0x20 : v
                    wordHash = (wordHash ^ UInt64(lower)) &* Self.fnvPrime
                    wordLen += 1
                    if v >= 0x41 { wordHasAlpha = true }
                } else {
                    endWord()
                    if v == 0x2026 { symbolTokens += 1 }
                    if v == 0x23 { symbolTokens += 1 }
                }
                continue
            }
            // Alphabetic scripts: a word is a whitespace-separated token; its core drops ASCII punctuation.
            inWord = true
            let isPunct = v < 0x80 && !Self.isASCIIAlnum(UInt8(v))
            if v != 0x2E { tokenAllDots = false }
            if v == 0x23 && wordLen == 0 { symbolTokens += 1 }
            if v == 0x2026 { symbolTokens += 1 }
            if isPunct || v == 0x2026 || (v >= 0x2010 && v <= 0x206F) {
                if wordLen > 0 { pendingPunct += 1 } else { pendingPunct += 1 }
                continue
            }
            pendingPunct = 0
            let lower = (v >= 0x41 && v <= 0x5A) ? v | 0x20 : v
            wordHash = (wordHash ^ UInt64(lower)) &* Self.fnvPrime
            if v > 0x7F { wordHash = (wordHash ^ UInt64(v >> 8)) &* Self.fnvPrime }
            wordLen += 1
            if v >= 0x41 { wordHasAlpha = true }
        }
        endLine()
        if paraChars > 0 { paragraphs.append((paraHash, paraChars)) }
        self.words = words
        self.alphaWords = alphaWords
        self.symbolTokens = symbolTokens
        self.stopWordHits = stopWordHits
        self.hanChars = hanChars
        self.chars = chars
        self.nonPrintable = nonPrintable
        self.wordChars = wordChars
    }

    // MARK: Derived measures

    /// An open-addressing table of UInt64 keys (already well-mixed hashes) with an Int32 pair per key,
    /// cleared and reused; Swift's Set/Dictionary re-hash every key with SipHash, which dominated these rules.
    struct HashCounter {
        var keys: [UInt64]
        var counts: [Int32]
        var extra: [Int32]
        var mask: Int

        init(capacity: Int) {
            var size = 16
            while size < capacity * 2 { size <<= 1 }
            keys = [UInt64](repeating: 0, count: size)
            counts = [Int32](repeating: 0, count: size)
            extra = [Int32](repeating: 0, count: size)
            mask = size - 1
        }

        /// Empties the table for `capacity` keys: it grows when needed, and when fewer keys come it uses (and
        /// clears) only a prefix of its storage, so the n-gram passes, whose candidates shrink, clear less.
        mutating func reset(capacity: Int) {
            var size = 16
            while size < capacity * 2 { size <<= 1 }
            if size > keys.count {
                self = HashCounter(capacity: capacity)
                return
            }
            mask = size - 1
            keys.withUnsafeMutableBufferPointer { UnsafeMutableBufferPointer(rebasing: $0[0..<size]).update(repeating: 0) }
        }

        /// Adds one occurrence of `key`; returns the slot (whose count is now at least 1).
        @inline(__always) mutating func add(_ key: UInt64) -> Int {
            let k = key == 0 ? 1 : key
            var slot = Int(truncatingIfNeeded: k ^ (k >> 29)) & mask
            while true {
                if keys[slot] == k { counts[slot] += 1; return slot }
                if keys[slot] == 0 { keys[slot] = k; counts[slot] = 1; return slot }
                slot = (slot + 1) & mask
            }
        }
    }

    /// Fraction of non-empty lines that repeat an earlier line, and the fraction of characters in them.
    func duplicateLines() -> (fraction: Double, charFraction: Double) {
        var seen = HashCounter(capacity: lines.count)
        var dup = 0, dupChars = 0, total = 0, totalChars = 0
        for line in lines where !line.isEmpty {
            total += 1
            totalChars += line.chars
            if seen.counts[seen.add(line.hash)] > 1 { dup += 1; dupChars += line.chars }
        }
        guard total > 0 else { return (0, 0) }
        return (Double(dup) / Double(total), Double(dupChars) / Double(max(1, totalChars)))
    }

    func duplicateParagraphs() -> (fraction: Double, charFraction: Double) {
        var seen = HashCounter(capacity: paragraphs.count)
        var dup = 0, dupChars = 0, totalChars = 0
        for p in paragraphs {
            totalChars += p.chars
            if seen.counts[seen.add(p.hash)] > 1 { dup += 1; dupChars += p.chars }
        }
        guard !paragraphs.isEmpty else { return (0, 0) }
        return (Double(dup) / Double(paragraphs.count), Double(dupChars) / Double(max(1, totalChars)))
    }

    @inline(__always) func ngramHash(_ start: Int, _ n: Int) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(n)
        for k in start..<(start + n) { h = (h ^ wordHashes[k]) &* 0xBF58_476D_1CE4_E5B9; h ^= h >> 31 }
        return h
    }

    /// Gopher: the characters of the most frequent n-gram's occurrences over all word characters. (The
    /// reference for `NgramRepetition`, which the cleaner uses.)
    func topNgramCharFraction(_ n: Int) -> Double {
        guard wordHashes.count >= n, wordChars > 0 else { return 0 }
        var table = HashCounter(capacity: wordHashes.count)
        var best: (count: Int32, chars: Int32) = (0, 0)
        for s in 0...(wordHashes.count - n) {
            let slot = table.add(ngramHash(s, n))
            if table.counts[slot] == 1 {
                var c: Int32 = 0
                for k in s..<(s + n) { c += wordLengths[k] }
                table.extra[slot] = c
            }
            let e = (table.counts[slot], table.extra[slot])
            if e.0 > best.count || (e.0 == best.count && e.1 > best.chars) { best = e }
        }
        guard best.count > 1 else { return 0 }
        return Double(Int(best.count) * Int(best.chars)) / Double(wordChars)
    }

    /// Gopher: the fraction of word characters inside n-grams that occur more than once. (The reference for
    /// `NgramRepetition`.)
    func duplicateNgramCharFraction(_ n: Int) -> Double {
        guard wordHashes.count >= n, wordChars > 0 else { return 0 }
        var seen = HashCounter(capacity: wordHashes.count)
        var covered = [Bool](repeating: false, count: wordHashes.count)
        var any = false
        for s in 0...(wordHashes.count - n) where seen.counts[seen.add(ngramHash(s, n))] > 1 {
            any = true
            for k in s..<(s + n) { covered[k] = true }
        }
        guard any else { return 0 }
        var c = 0
        for k in covered.indices where covered[k] { c += Int(wordLengths[k]) }
        return Double(c) / Double(wordChars)
    }
}

/// Gopher's n-gram repetition measures for increasing n over one document's words, sharing the work. An
/// n-gram whose (n-1)-gram prefix occurs once occurs once itself, so after each size only the start positions
/// of repeated n-grams stay candidates for the next: every copy of a repeated n-gram is among them, so its
/// count is exact, and ordinary text has few such positions beyond n = 3. Each candidate's hash is extended
/// by a word from the previous size's instead of re-hashing n words, word characters come from prefix sums,
/// and one hash table is reused. Equal to `TextStats.topNgramCharFraction` and `duplicateNgramCharFraction`
/// (tested), which hash every n-gram from scratch.
struct NgramRepetition {
    let stats: TextStats
    /// Start positions (increasing) whose n-gram may be repeated, and the hash of that n-gram.
    var positions: [Int32] = []
    var hashes: [UInt64] = []
    var slots: [Int] = []
    var n = 0
    /// prefixChars[k]: characters of words 0..<k.
    var prefixChars: [Int]
    var table: TextStats.HashCounter

    init(_ stats: TextStats) {
        self.stats = stats
        let count = stats.wordHashes.count
        prefixChars = [Int](repeating: 0, count: count + 1)
        for k in 0..<count { prefixChars[k + 1] = prefixChars[k] + Int(stats.wordLengths[k]) }
        table = TextStats.HashCounter(capacity: max(1, count))
        restart()
    }

    /// Every position a candidate again, for n = 0.
    mutating func restart() {
        let count = stats.wordHashes.count
        positions = (0..<count).map { Int32($0) }
        hashes = [UInt64](repeating: 0x9E37_79B9_7F4A_7C15, count: count)
        n = 0
    }

    /// Brings the candidates' hashes to n-grams of size `target` (from scratch when `target` is below n),
    /// dropping positions too close to the end.
    mutating func advance(to target: Int) {
        if target < n { restart() }
        let words = stats.wordHashes
        let count = words.count
        while n < target {
            n += 1
            let size = n
            var valid = positions.count
            while valid > 0 && Int(positions[valid - 1]) > count - size { valid -= 1 }
            positions.removeLast(positions.count - valid)
            hashes.removeLast(hashes.count - valid)
            positions.withUnsafeBufferPointer { p in
                hashes.withUnsafeMutableBufferPointer { h in
                    words.withUnsafeBufferPointer { w in
                        for i in 0..<p.count {
                            var x = (h[i] ^ w[Int(p[i]) + size - 1]) &* 0xBF58_476D_1CE4_E5B9
                            x ^= x >> 31
                            h[i] = x
                        }
                    }
                }
            }
        }
    }

    /// Keeps only the candidates whose n-gram is repeated (`slots[i]` is candidate i's entry in `table`).
    mutating func pruneToRepeated() {
        var kept = 0
        for i in 0..<positions.count where table.counts[slots[i]] > 1 {
            positions[kept] = positions[i]
            hashes[kept] = hashes[i]
            kept += 1
        }
        positions.removeLast(positions.count - kept)
        hashes.removeLast(hashes.count - kept)
    }

    /// The most frequent n-gram's occurrences times its characters, over all word characters.
    mutating func topCharFraction(_ size: Int) -> Double {
        let count = stats.wordHashes.count
        guard count >= size, stats.wordChars > 0 else { return 0 }
        advance(to: size)
        table.reset(capacity: positions.count)
        slots.removeAll(keepingCapacity: true)
        var best: (count: Int32, chars: Int32) = (0, 0)
        for i in 0..<positions.count {
            let slot = table.add(hashes[i])
            slots.append(slot)
            if table.counts[slot] == 1 {
                let s = Int(positions[i])
                table.extra[slot] = Int32(prefixChars[s + size] - prefixChars[s])
            }
            let e = (table.counts[slot], table.extra[slot])
            if e.0 > best.count || (e.0 == best.count && e.1 > best.chars) { best = e }
        }
        pruneToRepeated()
        guard best.count > 1 else { return 0 }
        return Double(Int(best.count) * Int(best.chars)) / Double(stats.wordChars)
    }

    /// The share of word characters covered by repeat occurrences of n-grams (the union of their spans).
    mutating func duplicateCharFraction(_ size: Int) -> Double {
        let count = stats.wordHashes.count
        guard count >= size, stats.wordChars > 0 else { return 0 }
        advance(to: size)
        table.reset(capacity: positions.count)
        slots.removeAll(keepingCapacity: true)
        var covered = 0
        var coveredUntil = 0  // spans start in increasing order, so their union grows at the end only
        for i in 0..<positions.count {
            let slot = table.add(hashes[i])
            slots.append(slot)
            // As Gopher (and the reference): an occurrence counts once an earlier one was seen, so the
            // first occurrence of a repeated n-gram is not covered by itself.
            guard table.counts[slot] > 1 else { continue }
            let s = Int(positions[i])
            let from = max(s, coveredUntil)
            covered += prefixChars[s + size] - prefixChars[from]
            coveredUntil = s + size
        }
        pruneToRepeated()
        return covered == 0 ? 0 : Double(covered) / Double(stats.wordChars)
    }
}
