// The LSH band buckets of the dedup stage with a memory budget: (band key, document) entries are buffered
// per band; when the buffer passes the budget, each band's entries are sorted and appended to a temporary
// file as one run, and clustering later merges the runs of a band (a k-way merge reading each run in small
// blocks). So the buckets of an input larger than RAM live on disk; what stays in memory per document is the
// union-find parent, the exact-text hash, the id and the line number. The order in which entries come out
// of the merge is the in-memory order (key, then document), so the clusters are the same.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One bucket entry: a band key and the index of the document that has it.
struct BandEntry: Comparable {
    var key: UInt64
    var document: Int32

    static func < (x: BandEntry, y: BandEntry) -> Bool { x.key != y.key ? x.key < y.key : x.document < y.document }
}

final class BandBuckets {
    let bands: Int
    /// Entries buffered (over all bands) before they are spilled; Int.max never spills.
    let maxBufferedEntries: Int
    let directory: String
    private var buffers: [[BandEntry]]
    private var buffered = 0
    /// Spill files; runs[f][band] is the (entry offset, entry count) of that band's run in file f.
    private(set) var files: [String] = []
    private var runs: [[(offset: Int, count: Int)]] = []
    static let entryBytes = 12  // key (8, little-endian) + document (4)

    /// `memoryLimit` in bytes for the buffered entries (0: unlimited); spill files go to `directory`.
    init(bands: Int, memoryLimit: Int, directory: String) {
        self.bands = bands
        maxBufferedEntries = memoryLimit > 0 ? max(bands, memoryLimit / MemoryLayout<BandEntry>.stride) : Int.max
        self.directory = directory
        buffers = [[BandEntry]](repeating: [], count: bands)
    }

    deinit {
        for f in files { unlink(f) }
    }

    var spilled: Bool { !files.isEmpty }

    /// Adds a document's band keys (one per band); spills when the buffer is over the budget.
    func add(document: Int, keys: [UInt64]) throws(DatasetError) {
        for b in 0..<bands { buffers[b].append(BandEntry(key: keys[b], document: Int32(document))) }
        buffered += bands
        if buffered >= maxBufferedEntries { try spill() }
    }

    /// The buckets of documents held in memory, never spilled.
    static func inMemory(_ keys: [DocumentKeys], bands: Int) -> BandBuckets {
        let buckets = BandBuckets(bands: bands, memoryLimit: 0, directory: "")
        for (k, d) in keys.enumerated() where !d.bandKeys.isEmpty {
            for b in 0..<bands { buckets.buffers[b].append(BandEntry(key: d.bandKeys[b], document: Int32(k))) }
        }
        return buckets
    }

    /// Sorts the buffered entries of every band and writes them to a new spill file.
    func spill() throws(DatasetError) {
        guard buffered > 0 else { return }
        let path = directory + "/dedup-buckets-\(getpid())-\(files.count)-\(UInt32.random(in: 0...UInt32.max)).run"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if fd < 0 { throw .io(file: path, message: "cannot create a spill file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        files.append(path)
        var offsets: [(offset: Int, count: Int)] = []
        var offset = 0
        var bytes: [UInt8] = []
        for b in 0..<bands {
            buffers[b].sort()
            bytes.removeAll(keepingCapacity: true)
            bytes.reserveCapacity(buffers[b].count * Self.entryBytes)
            for e in buffers[b] {
                withUnsafeBytes(of: e.key.littleEndian) { bytes.append(contentsOf: $0) }
                withUnsafeBytes(of: e.document.littleEndian) { bytes.append(contentsOf: $0) }
            }
            let failed = bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
                var done = 0
                while done < raw.count {
                    let n = write(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return true }
                    done += n
                }
                return false
            }
            if failed { throw .io(file: path, message: "write failed: \(String(cString: strerror(errno)))") }
            offsets.append((offset, buffers[b].count))
            offset += buffers[b].count
            buffers[b].removeAll(keepingCapacity: false)
        }
        runs.append(offsets)
        buffered = 0
    }

    /// Calls `body` with the entries of `band` in sorted order (the runs on disk merged with the buffer).
    func forEachSorted(band: Int, _ body: (BandEntry) -> Void) throws(DatasetError) {
        buffers[band].sort()
        if files.isEmpty {
            for e in buffers[band] { body(e) }
            return
        }
        var readers: [RunReader] = []
        for (f, file) in files.enumerated() where runs[f][band].count > 0 {
            readers.append(try RunReader(path: file, offset: runs[f][band].offset, count: runs[f][band].count))
        }
        var memory = 0
        let inMemory = buffers[band]
        // A linear scan of the run heads: the number of runs is the input size over the budget, small.
        while true {
            var best: BandEntry? = memory < inMemory.count ? inMemory[memory] : nil
            var from = -1
            for (k, r) in readers.enumerated() {
                if let h = r.head, best == nil || h < best! {
                    best = h
                    from = k
                }
            }
            guard let e = best else { break }
            body(e)
            if from < 0 { memory += 1 } else { try readers[from].advance() }
        }
    }

    /// Reads one run of a spill file in blocks.
    final class RunReader {
        let path: String
        let fd: Int32
        var next: Int  // entry index in the file of the next block
        var left: Int  // entries not yet read into the block
        var block: [UInt8] = []
        var at = 0
        private(set) var head: BandEntry?

        init(path: String, offset: Int, count: Int) throws(DatasetError) {
            self.path = path
            fd = open(path, O_RDONLY)
            if fd < 0 { throw .io(file: path, message: "cannot open a spill file: \(String(cString: strerror(errno)))") }
            next = offset
            left = count
            try advance()
        }

        deinit { close(fd) }

        func advance() throws(DatasetError) {
            if at >= block.count {
                guard left > 0 else {
                    head = nil
                    return
                }
                let n = min(left, 8192)
                block = [UInt8](repeating: 0, count: n * BandBuckets.entryBytes)
                let want = block.count
                let got = block.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(next * BandBuckets.entryBytes)) }
                if got != want { throw .io(file: path, message: "spill file ends early") }
                next += n
                left -= n
                at = 0
            }
            var key: UInt64 = 0
            var document: Int32 = 0
            block.withUnsafeBytes { raw in
                key = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
                document = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: Int32.self))
            }
            at += BandBuckets.entryBytes
            head = BandEntry(key: key, document: document)
        }
    }
}
