// A persistent pool of worker threads for the kernels' data-parallel loops (rows of a matrix, heads of
// attention). Threads are created once. Between jobs a worker spins on an atomic job counter for a while
// (about a millisecond) before it sleeps on a condition: a decode step runs ~200 short parallel kernels,
// and a futex wake-up per kernel (tens of µs) would cost more than the kernels themselves on small
// models; llama.cpp's ggml threadpool spins the same way. The calling thread takes part as worker 0 and
// spins until the others are done. Leaves out work stealing: the kernels split their work statically and
// evenly. Not reentrant: a job started from inside a job runs serially on the calling thread.
import Atomics
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fixed set of threads that run one data-parallel job at a time.
public final class ThreadPool: @unchecked Sendable {
    /// Workers including the calling thread.
    public let threadCount: Int
    private let shared: Shared

    /// The state the workers share; they hold it, not the pool, so the pool can go away first.
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        /// Bumped (releasing) once `job` is set: workers that see a new value run the job.
        let generation = ManagedAtomic<Int>(0)
        /// Workers other than the caller still running the current job.
        let remaining = ManagedAtomic<Int>(0)
        let busy = ManagedAtomic<Bool>(false)
        let shuttingDown = ManagedAtomic<Bool>(false)
        var job: ((Int) -> Void)?

        /// Spins (yields) before sleeping: about a millisecond.
        static let spinLimit = 2_000

        func workerLoop(index: Int) {
            var seen = 0
            while true {
                var spins = 0
                var current = generation.load(ordering: .acquiring)
                while current == seen {
                    if shuttingDown.load(ordering: .relaxed) { return }
                    spins &+= 1
                    if spins < Self.spinLimit {
                        spinPause()
                    } else {
                        condition.lock()
                        while generation.load(ordering: .acquiring) == seen && !shuttingDown.load(ordering: .relaxed) {
                            condition.wait()
                        }
                        condition.unlock()
                        spins = 0
                    }
                    current = generation.load(ordering: .acquiring)
                }
                seen = current
                job!(index)
                remaining.wrappingDecrement(ordering: .releasing)
            }
        }

        func wakeAll() {
            // Under the lock: a worker between its last check and `wait` cannot miss the broadcast.
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
    }

    /// A pool with `threadCount` workers (the caller counts as one); defaults to the active cores.
    public init(threadCount: Int? = nil) {
        self.threadCount = max(1, threadCount ?? ProcessInfo.processInfo.activeProcessorCount)
        let shared = Shared()
        self.shared = shared
        for index in 1..<self.threadCount {
            let thread = Thread { shared.workerLoop(index: index) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    deinit {
        shared.shuttingDown.store(true, ordering: .relaxed)
        shared.wakeAll()
    }

    /// Runs `body(worker)` once for every worker index in `0..<threadCount` and returns when all finished.
    public func run(_ body: (Int) -> Void) {
        let s = shared
        guard threadCount > 1, s.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for worker in 0..<threadCount { body(worker) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            s.job = escaping
            s.remaining.store(threadCount - 1, ordering: .relaxed)
            s.generation.wrappingIncrement(ordering: .releasing)
            s.wakeAll()
            escaping(0)
            while s.remaining.load(ordering: .acquiring) > 0 { spinPause() }
            s.job = nil
        }
        s.busy.store(false, ordering: .releasing)
    }

    /// Runs `body(range, worker)` over `0..<count` in parallel: contiguous chunks (multiples of
    /// `granularity`, about four per worker) handed out in order from an atomic counter, so a worker whose
    /// core is slower or busy takes fewer chunks instead of holding up the whole step. Results must not
    /// depend on which worker runs a range (the kernels compute each row alone).
    public func parallelFor(_ count: Int, granularity: Int = 1, _ body: (Range<Int>, Int) -> Void) {
        guard count > 0 else { return }
        let units = (count + granularity - 1) / granularity
        if units == 1 || threadCount == 1 {
            body(0..<count, 0)
            return
        }
        let chunks = min(units, threadCount * 4)
        let next = ManagedAtomic<Int>(0)
        run { worker in
            while true {
                let chunk = next.loadThenWrappingIncrement(ordering: .relaxed)
                guard chunk < chunks else { return }
                let range = Self.split(units, parts: chunks, part: chunk)
                let lower = range.lowerBound * granularity
                let upper = min(count, range.upperBound * granularity)
                if lower < upper { body(lower..<upper, worker) }
            }
        }
    }

    /// The `part`-th of `parts` contiguous, nearly equal ranges of `0..<count`.
    public static func split(_ count: Int, parts: Int, part: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let lower = part * base + min(part, extra)
        return lower..<(lower + base + (part < extra ? 1 : 0))
    }
}

/// A mutable pointer that may cross into the pool's workers: each worker writes a disjoint part.
public struct SendablePointer<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// One spin: gives the core to any other runnable thread (`pause` is not importable from Swift; a yield
/// with nothing else to run returns in well under a microsecond).
@inline(__always)
private func spinPause() {
    sched_yield()
}
