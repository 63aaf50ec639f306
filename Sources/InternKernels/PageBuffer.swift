// Anonymous memory for weights that decode streams every token (packed bf16, resident quantized blocks).
// On Linux it asks for transparent huge pages (honoured where THP is "always" or "madvise"): a 2 MiB page
// needs one TLB entry where 4 KiB pages need 512, and in a virtual machine every TLB miss walks two page
// tables. internlm2-1_8b Q4_0 decode on 2 Zen 4 cores of a KVM guest, 4 alternating runs: median 30.3 t/s
// from huge pages, 28.3 from the same copy in 4 KiB pages, 29.1 read in place from the mapped file
// (BENCHMARKS.md, 2026-12-07 fourth session). Pages of a mapped file stay 4 KiB.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `byteCount` bytes of zeroed, 4096-byte aligned memory, freed with the object.
public final class PageBuffer: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int

    public init(byteCount: Int) {
        let bytes = max(1, byteCount)
        self.byteCount = bytes
        #if os(Linux)
            guard let pages = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                pages != MAP_FAILED
            else { fatalError("out of memory: cannot map \(bytes) bytes for weights") }
            _ = madvise(pages, bytes, MADV_HUGEPAGE)
            base = pages
        #else
            base = .allocate(byteCount: bytes, alignment: 4096)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        #endif
    }

    deinit {
        #if os(Linux)
            munmap(base, byteCount)
        #else
            base.deallocate()
        #endif
    }
}
