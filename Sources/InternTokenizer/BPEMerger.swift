// The merge loop shared by both BPE flavours: SentencePiece BPE (a pair merges into a piece, ranked by
// that piece's score) and byte-level BPE (ranked by the merge's position in the merges list). Both
// references pop the best pair from a priority queue with ties going to the leftmost pair and skip
// stale entries; `MergeRules.run` does the same. Symbols and pairs are integer ids, so no string is
// built or hashed per candidate.

/// Merge rules: (left symbol, right symbol) -> resulting symbol, with a priority (higher merges first).
struct MergeRules: Sendable {
    private var table = PairTable()
    private(set) var results: [Int32] = []
    private(set) var priorities: [Float] = []

    /// Adds a rule unless the pair already has one (the first rule for a pair wins, as in both references).
    mutating func add(left: Int32, right: Int32, result: Int32, priority: Float) {
        let key = PairTable.key(UInt32(bitPattern: left), UInt32(bitPattern: right))
        guard table.find(key) == nil else { return }
        table.insert(key, value: Int32(results.count))
        results.append(result)
        priorities.append(priority)
    }

    @inline(__always)
    private func mergeCandidate(_ s: inout MergeScratch, _ left: Int) -> Int32 {
        let right = s.next[left]
        guard right >= 0, !s.frozen[left], !s.frozen[right], s.symbol[left] >= 0, s.symbol[right] >= 0 else { return -1 }
        return table.find(PairTable.key(UInt32(bitPattern: s.symbol[left]), UInt32(bitPattern: s.symbol[right]))) ?? -1
    }

    /// Greedy merging: always the adjacent pair with the highest-priority rule, ties to the leftmost.
    /// Small words scan linearly; long ones (CJK runs, repeated characters) use a heap, as the references do.
    func run(_ s: inout MergeScratch) {
        let count = s.symbol.count
        guard count > 1 else { return }
        for i in 0..<count { s.candidate.append(mergeCandidate(&s, i)) }
        if count <= 48 {
            while true {
                var best = -1
                var bestScore = -Float.infinity
                var i = 0
                while i >= 0 {
                    let c = s.candidate[i]
                    if c >= 0 && (best < 0 || priorities[Int(c)] > bestScore) {
                        best = i
                        bestScore = priorities[Int(c)]
                    }
                    i = s.next[i]
                }
                if best < 0 { return }
                merge(&s, at: best)
                s.candidate[best] = mergeCandidate(&s, best)
                if s.prev[best] >= 0 { s.candidate[s.prev[best]] = mergeCandidate(&s, s.prev[best]) }
            }
        }
        var heap = PairHeap()
        for i in 0..<count where s.candidate[i] >= 0 {
            heap.push(.init(score: priorities[Int(s.candidate[i])], left: Int32(i), size: s.pairSize(i)))
        }
        while let top = heap.pop() {
            let left = Int(top.left)
            // Stale entries: a side was merged away or grew since the pair was queued.
            guard s.alive[left], s.next[left] >= 0, s.pairSize(left) == top.size, s.candidate[left] >= 0 else { continue }
            merge(&s, at: left)
            s.candidate[left] = mergeCandidate(&s, left)
            if s.candidate[left] >= 0 {
                heap.push(.init(score: priorities[Int(s.candidate[left])], left: Int32(left), size: s.pairSize(left)))
            }
            let p = s.prev[left]
            if p >= 0 {
                s.candidate[p] = mergeCandidate(&s, p)
                if s.candidate[p] >= 0 { heap.push(.init(score: priorities[Int(s.candidate[p])], left: Int32(p), size: s.pairSize(p))) }
            }
        }
    }

    @inline(__always)
    private func merge(_ s: inout MergeScratch, at left: Int) {
        let right = s.next[left]
        s.symbol[left] = results[Int(s.candidate[left])]
        s.end[left] = s.end[right]
        s.alive[right] = false
        s.candidate[right] = -1
        let after = s.next[right]
        s.next[left] = after
        if after >= 0 { s.prev[after] = left }
    }
}

/// Per-call working arrays of the merge loop, reused across chunks so the loop allocates nothing.
struct MergeScratch {
    var symbol: [Int32] = []
    var start: [Int] = []
    var end: [Int] = []
    var prev: [Int] = []
    var next: [Int] = []
    var frozen: [Bool] = []
    var alive: [Bool] = []
    /// Rule index of the pair starting at each symbol, or -1.
    var candidate: [Int32] = []

    mutating func reset() {
        symbol.removeAll(keepingCapacity: true)
        start.removeAll(keepingCapacity: true)
        end.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        frozen.removeAll(keepingCapacity: true)
        alive.removeAll(keepingCapacity: true)
        candidate.removeAll(keepingCapacity: true)
    }

    mutating func append(symbol id: Int32, start s: Int, end e: Int, frozen f: Bool) {
        let index = symbol.count
        if index > 0 { next[index - 1] = index }
        symbol.append(id)
        start.append(s)
        end.append(e)
        prev.append(index - 1)
        next.append(-1)
        frozen.append(f)
        alive.append(true)
    }

    mutating func runMerges(_ rules: MergeRules) { rules.run(&self) }

    /// Byte length of the pair starting at `left`: it identifies a queued pair, since symbols only grow.
    @inline(__always) func pairSize(_ left: Int) -> Int32 {
        Int32(end[next[left]] - start[left])
    }
}

struct PairHeap {
    struct Entry {
        var score: Float
        var left: Int32
        var size: Int32
        /// Higher score first; equal scores go to the leftmost pair.
        @inline(__always) func precedes(_ other: Entry) -> Bool {
            score != other.score ? score > other.score : left < other.left
        }
    }
    private var items: [Entry] = []

    mutating func push(_ entry: Entry) {
        items.append(entry)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let l = 2 * parent + 1
                let r = l + 1
                var best = parent
                if l < items.count && items[l].precedes(items[best]) { best = l }
                if r < items.count && items[r].precedes(items[best]) { best = r }
                if best == parent { break }
                items.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}

/// Open-addressing hash map from a 64-bit key to an Int32 value; built once, then read-only.
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var values: [Int32]
    private var count = 0
    private static let empty = UInt64.max

    init() {
        keys = [UInt64](repeating: Self.empty, count: 1024)
        values = [Int32](repeating: 0, count: 1024)
    }

    @inline(__always) static func key(_ a: UInt32, _ b: UInt32) -> UInt64 { UInt64(a) << 32 | UInt64(b) }

    @inline(__always) private static func slot(_ key: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    @inline(__always) func find(_ key: UInt64) -> Int32? {
        keys.withUnsafeBufferPointer { keys in
            let mask = keys.count - 1
            var i = Self.slot(key, mask: mask)
            while true {
                let k = keys[i]
                if k == key { return values[i] }
                if k == Self.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }

    mutating func insert(_ key: UInt64, value: Int32) {
        if (count + 1) * 2 > keys.count { grow() }
        let mask = keys.count - 1
        var i = Self.slot(key, mask: mask)
        while keys[i] != Self.empty && keys[i] != key { i = (i + 1) & mask }
        if keys[i] == Self.empty { count += 1 }
        keys[i] = key
        values[i] = value
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        keys = [UInt64](repeating: Self.empty, count: oldKeys.count * 2)
        values = [Int32](repeating: 0, count: oldKeys.count * 2)
        count = 0
        for (k, v) in zip(oldKeys, oldValues) where k != Self.empty { insert(k, value: v) }
    }
}
