// A read-only memory map of a whole file: checkpoints are mapped, not read, so loading costs page-table
// setup and the weights are paged in by the first forward pass (llama2.c `memory_map_weights`).
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file mapped read-only into memory for the life of the object.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    /// The first byte of the mapping (a valid 1-byte dummy for empty files).
    public let base: UnsafeRawPointer
    private let mapped: Bool

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw CheckpointError.fileNotFound(path: path) }
            throw CheckpointError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CheckpointError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        size = Int(info.st_size)
        if size == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8))
            mapped = false
            return
        }
        guard let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), pointer != MAP_FAILED else {
            throw CheckpointError.unreadable(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(pointer)
        mapped = true
    }

    /// Drops the resident pages wholly inside `bytes` from `start` (which must lie in this mapping) from the
    /// process: a later read pages them in again from the file. For data copied elsewhere (packed weights).
    public func releasePages(_ start: UnsafeRawPointer, bytes: Int) {
        guard mapped, start >= base, start + bytes <= base + size else { return }
        let page = Int(getpagesize())
        let first = (Int(bitPattern: start) + page - 1) / page * page, end = (Int(bitPattern: start) + bytes) / page * page
        if end > first { _ = madvise(UnsafeMutableRawPointer(bitPattern: first), end - first, MADV_DONTNEED) }
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: base), size)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }
}
