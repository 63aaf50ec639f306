// A read-only memory map of a whole file: checkpoints are mapped, not read, so loading costs page-table
// setup (llama2.c `memory_map_weights`); the matrices products read are then copied out with `copy` into
// huge pages or packed (WeightMatrix.preparedForProducts), and the embedding table is paged in row by row.
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
    /// Kept open for `copy` (-1 for empty files).
    private let descriptor: Int32

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw CheckpointError.fileNotFound(path: path) }
            throw CheckpointError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw CheckpointError.unreadable(path: path, reason: reason)
        }
        size = Int(info.st_size)
        if size == 0 {
            close(fd)
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8))
            mapped = false
            descriptor = -1
            return
        }
        guard let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), pointer != MAP_FAILED else {
            let reason = "mmap: " + String(cString: strerror(errno))
            close(fd)
            throw CheckpointError.unreadable(path: path, reason: reason)
        }
        base = UnsafeRawPointer(pointer)
        mapped = true
        descriptor = fd
    }

    /// Copies `bytes` from `start` (which must lie in this mapping) to `destination` by reading the file:
    /// the kernel copies from its page cache, where reading through the mapping would fault each 4 KiB page
    /// in (1.06 GB on a KVM guest: 0.2 s against 1.0–3.0 s). False where the range is outside the mapping or a read
    /// fails or comes up short (the file shrank).
    public func copy(_ start: UnsafeRawPointer, bytes: Int, to destination: UnsafeMutableRawPointer) -> Bool {
        guard mapped, start >= base, bytes >= 0, start + bytes <= base + size else { return false }
        var done = 0
        while done < bytes {
            let n = pread(descriptor, destination + done, bytes - done, off_t(start - base + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
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
            close(descriptor)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }
}
