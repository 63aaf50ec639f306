import CZlib
import CZstd
// Streaming byte input and output for data files: plain or gzip (any number of concatenated members, as
// WARC.gz files are written), split into lines or read in exact counts. Output goes to a temporary file
// that is renamed over the destination only when the writer finishes, so a crash never leaves half a file.
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: - Sources of bytes

/// A stream of bytes, read in chunks.
protocol ByteSource: AnyObject {
    /// Appends up to `limit` bytes to `buffer`; returns how many were appended, 0 at the end.
    func read(into buffer: inout [UInt8], limit: Int) throws(DatasetError) -> Int
}

final class FileByteSource: ByteSource {
    let path: String
    private let fd: Int32
    private(set) var offset = 0
    private let scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1 << 20)

    init(path: String) throws(DatasetError) {
        self.path = path
        if path == "-" {
            fd = 0
        } else {
            fd = open(path, O_RDONLY)
            if fd < 0 { throw .io(file: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        }
    }

    deinit {
        if fd > 0 { close(fd) }
        scratch.deallocate()
    }

    func read(into buffer: inout [UInt8], limit: Int) throws(DatasetError) -> Int {
        let n = min(limit, scratch.count)
        var got = 0
        while true {
            got = Glibc_read(fd, scratch.baseAddress!, n)
            if got < 0 && errno == EINTR { continue }
            break
        }
        if got < 0 { throw .io(file: path, message: "read failed: \(String(cString: strerror(errno)))") }
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[0..<got]))
        offset += got
        return got
    }
}

@inline(__always) private func Glibc_read(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
        return Glibc.read(fd, p, n)
    #else
        return Darwin.read(fd, p, n)
    #endif
}

/// Inflates gzip data (RFC 1952), member after member, from another source.
final class GzipByteSource: ByteSource {
    private let inner: FileByteSource
    private let stream: UnsafeMutablePointer<z_stream>
    private var input: [UInt8] = []
    private var inputStart = 0
    private var innerEOF = false
    private var finishedMember = false
    private var sawData = false
    private let scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1 << 20)

    init(_ inner: FileByteSource) throws(DatasetError) {
        self.inner = inner
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = inflateInit2_(stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK { throw .io(file: inner.path, message: "zlib inflateInit failed (\(rc))") }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        scratch.deallocate()
    }

    func read(into buffer: inout [UInt8], limit: Int) throws(DatasetError) -> Int {
        while true {
            if inputStart >= input.count && !innerEOF {
                input.removeAll(keepingCapacity: true)
                inputStart = 0
                if try inner.read(into: &input, limit: 1 << 20) == 0 { innerEOF = true }
            }
            if inputStart >= input.count && innerEOF {
                if sawData && !finishedMember {
                    throw .corrupt(file: inner.path, offset: inner.offset, message: "gzip data ends early (truncated file)")
                }
                return 0
            }
            if finishedMember {
                // Another member follows (WARC.gz: one member per record).
                inflateReset(stream)
                finishedMember = false
            }
            sawData = true
            let cap = min(limit, scratch.count)
            var rc: Int32 = 0
            var produced = 0
            var consumed = 0
            input.withUnsafeMutableBufferPointer { inBuf in
                stream.pointee.next_in = inBuf.baseAddress! + inputStart
                stream.pointee.avail_in = UInt32(inBuf.count - inputStart)
                stream.pointee.next_out = scratch.baseAddress!
                stream.pointee.avail_out = UInt32(cap)
                rc = inflate(stream, Z_NO_FLUSH)
                consumed = inBuf.count - inputStart - Int(stream.pointee.avail_in)
                produced = cap - Int(stream.pointee.avail_out)
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[0..<produced]))
            inputStart += consumed
            if rc == Z_STREAM_END {
                finishedMember = true
                sawData = false
            } else if rc != Z_OK && rc != Z_BUF_ERROR {
                let offset = inner.offset - (input.count - inputStart)
                throw .corrupt(file: inner.path, offset: offset, message: "gzip data is damaged (zlib error \(rc))")
            }
            if produced > 0 { return produced }
        }
    }
}

/// Decompresses zstd data (any number of frames) from another source.
final class ZstdByteSource: ByteSource {
    private let inner: FileByteSource
    private let stream: OpaquePointer
    private var input: [UInt8] = []
    private var inputStart = 0
    private var innerEOF = false
    private var frameOpen = false
    private let scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1 << 20)

    init(_ inner: FileByteSource) throws(DatasetError) {
        self.inner = inner
        guard let s = ZSTD_createDStream() else { throw .io(file: inner.path, message: "zstd: cannot create a decompression stream") }
        stream = s
        ZSTD_initDStream(stream)
    }

    deinit {
        ZSTD_freeDStream(stream)
        scratch.deallocate()
    }

    func read(into buffer: inout [UInt8], limit: Int) throws(DatasetError) -> Int {
        while true {
            if inputStart >= input.count && !innerEOF {
                input.removeAll(keepingCapacity: true)
                inputStart = 0
                if try inner.read(into: &input, limit: 1 << 20) == 0 { innerEOF = true }
            }
            if inputStart >= input.count && innerEOF {
                if frameOpen {
                    throw .corrupt(file: inner.path, offset: inner.offset, message: "zstd data ends early (truncated file)")
                }
                return 0
            }
            let cap = min(limit, scratch.count)
            var rc = 0
            var consumed = 0
            var produced = 0
            input.withUnsafeBufferPointer { inBuf in
                var src = ZSTD_inBuffer(src: inBuf.baseAddress! + inputStart, size: inBuf.count - inputStart, pos: 0)
                var dst = ZSTD_outBuffer(dst: scratch.baseAddress!, size: cap, pos: 0)
                rc = ZSTD_decompressStream(stream, &dst, &src)
                consumed = src.pos
                produced = dst.pos
            }
            if ZSTD_isError(rc) != 0 {
                throw .corrupt(
                    file: inner.path, offset: inner.offset - (input.count - inputStart),
                    message: "zstd data is damaged (\(String(cString: ZSTD_getErrorName(rc))))")
            }
            inputStart += consumed
            frameOpen = rc != 0
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[0..<produced]))
            if produced > 0 { return produced }
        }
    }
}

// MARK: - Buffered reading

/// Reads lines (split at `\n`, a trailing `\r` removed) or exact byte counts from a file, plain or gzip.
public final class ByteReader {
    public let path: String
    private let source: any ByteSource
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEOF = false
    /// A read error held back by `nextLines` until the lines before it are handed out.
    private var pendingError: DatasetError?
    /// The 1-based number of the line last returned by `nextLine`.
    public private(set) var lineNumber = 0

    /// Opens `path` ("-" is standard input); `.gz` files are inflated.
    public init(path: String) throws(DatasetError) {
        self.path = path
        let file = try FileByteSource(path: path)
        if path.hasSuffix(".gz") {
            source = try GzipByteSource(file)
        } else if path.hasSuffix(".zst") {
            source = try ZstdByteSource(file)
        } else {
            source = file
        }
    }

    private func fill() throws(DatasetError) -> Bool {
        if atEOF { return false }
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        let n = try source.read(into: &buffer, limit: 1 << 20)
        if n == 0 { atEOF = true }
        return n > 0
    }

    /// The next line without its terminator, or nil at the end of the input. The slice is valid until the next call.
    public func nextLine() throws(DatasetError) -> ArraySlice<UInt8>? {
        var searchFrom = start
        while true {
            let found: Int? = buffer.withUnsafeBufferPointer { b -> Int? in
                guard searchFrom < b.count else { return nil }
                guard let p = memchr(b.baseAddress! + searchFrom, 0x0A, b.count - searchFrom) else { return nil }
                return b.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
            }
            if let newline = found {
                var end = newline
                if end > start && buffer[end - 1] == 0x0D { end -= 1 }
                let line = buffer[start..<end]
                start = newline + 1
                lineNumber += 1
                return line
            }
            let consumedBefore = start
            searchFrom = buffer.count
            if try !fill() {
                guard start < buffer.count else { return nil }
                var end = buffer.count
                if buffer[end - 1] == 0x0D { end -= 1 }
                let line = buffer[start..<end]
                start = buffer.count
                lineNumber += 1
                return line
            }
            searchFrom -= consumedBefore - start
        }
    }

    /// The next run of whole lines, cut after the first newline at or past `size` bytes (so a line longer than
    /// `size` comes whole), with the number of lines in it; nil at the end. The lines keep their terminators;
    /// the input's last line may lack one. A damaged compressed stream first yields the whole lines read
    /// before the damage, then throws on the next call, as `nextLine` would.
    public func nextLines(size: Int) throws(DatasetError) -> (bytes: [UInt8], lines: Int)? {
        // Bytes from `start` already searched for a newline.
        var searched = max(0, size - 1)
        var cut = -1
        while cut < 0 {
            let from = start + searched
            if from < buffer.count {
                buffer.withUnsafeBufferPointer { b in
                    if let p = memchr(b.baseAddress! + from, 0x0A, b.count - from) {
                        cut = b.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self)) + 1
                    }
                }
                if cut >= 0 { break }
                searched = buffer.count - start
            }
            if !atEOF && pendingError == nil {
                do { _ = try fill() } catch { pendingError = error }
                continue
            }
            // The end of the input: the rest is the last line. After damage, only the whole lines before it.
            if pendingError == nil {
                cut = buffer.count
            } else {
                var k = buffer.count - 1
                while k >= start && buffer[k] != 0x0A { k -= 1 }
                cut = k + 1
            }
            if cut <= start {
                if let e = pendingError {
                    pendingError = nil
                    throw e
                }
                return nil
            }
        }
        let bytes = Array(buffer[start..<cut])
        start = cut
        var lines = 0
        bytes.withUnsafeBufferPointer { b in
            var at = 0
            while at < b.count, let p = memchr(b.baseAddress! + at, 0x0A, b.count - at) {
                lines += 1
                at = b.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self)) + 1
            }
            if at < b.count { lines += 1 }
        }
        lineNumber += lines
        return (bytes, lines)
    }

    /// Exactly `count` bytes, or fewer at the end of the input.
    public func read(count: Int) throws(DatasetError) -> [UInt8] {
        while buffer.count - start < count {
            if try !fill() { break }
        }
        let end = min(buffer.count, start + count)
        let bytes = Array(buffer[start..<end])
        start = end
        return bytes
    }

    /// Reads the whole remaining input.
    public func readAll() throws(DatasetError) -> [UInt8] {
        while try fill() {}
        let bytes = Array(buffer[start...])
        start = buffer.count
        return bytes
    }
}

// MARK: - Writing

/// Writes bytes to `path` through a temporary file in the same folder, gzip-compressed when the name ends in
/// `.gz`; `finish()` renames it into place. Without `finish()` the destination is left untouched.
public final class AtomicWriter {
    public let path: String
    private let tempPath: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var deflater: UnsafeMutablePointer<z_stream>?
    private var zstd: OpaquePointer?
    private var finished = false
    private let durable: Bool
    /// Uncompressed bytes written so far.
    public private(set) var bytesWritten = 0

    /// Opens a writer; "-" writes to standard output without a temporary file. `durable: false` skips the
    /// fsync before the rename, for intermediate files whose completeness is checked another way (an
    /// interrupted process loses nothing written; only a crash of the machine could).
    public init(path: String, compressionLevel: Int32 = 6, durable: Bool = true) throws(DatasetError) {
        self.path = path
        self.durable = durable
        if path == "-" {
            tempPath = "-"
            fd = 1
        } else {
            tempPath = path + ".tmp-\(getpid())"
            fd = open(tempPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd < 0 { throw .io(file: path, message: "cannot create \(tempPath): \(String(cString: strerror(errno)))") }
        }
        if path.hasSuffix(".gz") {
            let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            s.initialize(to: z_stream())
            let rc = deflateInit2_(
                s, compressionLevel, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                Int32(MemoryLayout<z_stream>.size))
            if rc != Z_OK { throw .io(file: path, message: "zlib deflateInit failed (\(rc))") }
            deflater = s
        } else if path.hasSuffix(".zst") {
            guard let c = ZSTD_createCCtx() else { throw .io(file: path, message: "zstd: cannot create a compression context") }
            ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3)
            zstd = c
        }
    }

    deinit {
        if let z = zstd { ZSTD_freeCCtx(z) }
        if let d = deflater {
            deflateEnd(d)
            d.deallocate()
        }
        if !finished && fd > 2 {
            close(fd)
            unlink(tempPath)
        }
    }

    public func write(_ bytes: some Sequence<UInt8>) throws(DatasetError) {
        let before = buffer.count
        buffer.append(contentsOf: bytes)
        bytesWritten += buffer.count - before
        if buffer.count >= 1 << 20 { try flush(final: false) }
    }

    public func write(_ string: String) throws(DatasetError) {
        try write(string.utf8)
    }

    private func writeAll(_ bytes: [UInt8]) throws(DatasetError) {
        let failure = bytes.withUnsafeBytes { writeRaw($0) }
        if failure != 0 { throw .io(file: path, message: "write failed: \(String(cString: strerror(failure)))") }
    }

    /// Writes everything; returns 0 or the errno of the failure.
    private func writeRaw(_ p: UnsafeRawBufferPointer) -> Int32 {
        var offset = 0
        while offset < p.count {
            #if canImport(Glibc)
                let n = Glibc.write(fd, p.baseAddress! + offset, p.count - offset)
            #else
                let n = Darwin.write(fd, p.baseAddress! + offset, p.count - offset)
            #endif
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return 0
    }

    private func flushZstd(_ z: OpaquePointer, final: Bool) throws(DatasetError) {
        var compressed: [UInt8] = []
        var out = [UInt8](repeating: 0, count: 1 << 18)
        var failure: Int = 0
        buffer.withUnsafeBufferPointer { inBuf in
            var src = ZSTD_inBuffer(src: inBuf.baseAddress, size: inBuf.count, pos: 0)
            while true {
                var remaining = 0
                out.withUnsafeMutableBufferPointer { o in
                    var dst = ZSTD_outBuffer(dst: o.baseAddress, size: o.count, pos: 0)
                    remaining = ZSTD_compressStream2(z, &dst, &src, final ? ZSTD_e_end : ZSTD_e_continue)
                    compressed.append(contentsOf: o[0..<dst.pos])
                }
                if ZSTD_isError(remaining) != 0 { failure = remaining; return }
                if final ? remaining == 0 : src.pos == src.size { return }
            }
        }
        if failure != 0 { throw .io(file: path, message: "zstd compression failed (\(String(cString: ZSTD_getErrorName(failure))))") }
        try writeAll(compressed)
        buffer.removeAll(keepingCapacity: true)
    }

    private func flush(final: Bool) throws(DatasetError) {
        if let z = zstd { return try flushZstd(z, final: final) }
        guard let d = deflater else {
            try writeAll(buffer)
            buffer.removeAll(keepingCapacity: true)
            return
        }
        var compressed: [UInt8] = []
        var out = [UInt8](repeating: 0, count: 1 << 18)
        var rc: Int32 = Z_OK
        buffer.withUnsafeMutableBufferPointer { inBuf in
            d.pointee.next_in = inBuf.baseAddress
            d.pointee.avail_in = UInt32(inBuf.count)
            repeat {
                out.withUnsafeMutableBufferPointer { o in
                    d.pointee.next_out = o.baseAddress
                    d.pointee.avail_out = UInt32(o.count)
                    rc = deflate(d, final ? Z_FINISH : Z_NO_FLUSH)
                    compressed.append(contentsOf: o[0..<(o.count - Int(d.pointee.avail_out))])
                }
            } while d.pointee.avail_out == 0 || (final && rc != Z_STREAM_END && rc >= 0)
        }
        if rc < 0 && rc != Z_BUF_ERROR { throw .io(file: path, message: "zlib deflate failed (\(rc))") }
        try writeAll(compressed)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, closes and renames the temporary file over `path`.
    public func finish() throws(DatasetError) {
        guard !finished else { return }
        try flush(final: true)
        finished = true
        if fd > 2 {
            if durable && fsync(fd) != 0 && errno != EINVAL { throw .io(file: path, message: "fsync failed") }
            close(fd)
            if rename(tempPath, path) != 0 {
                throw .io(file: path, message: "cannot rename \(tempPath) into place: \(String(cString: strerror(errno)))")
            }
        }
    }
}
