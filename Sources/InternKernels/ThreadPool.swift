// A persistent pool of worker threads for the kernels' data-parallel loops (rows of a matrix, heads of
// attention). Threads are created once and sleep on a condition between jobs, so a decode step pays a
// wake-up per parallel kernel and no thread creation. The calling thread takes part as worker 0.
// Leaves out work stealing: the kernels split their work statically and evenly (llama.cpp's ggml
// threadpool does the same for matrix products). Not reentrant: a job started from inside a job runs
// serially on the calling thread.
import Foundation

/// A fixed set of threads that run one data-parallel job at a time.
public final class ThreadPool: @unchecked Sendable {
    /// Workers including the calling thread.
    public let threadCount: Int
    private let shared: Shared

    /// The state the workers share; they hold it, not the pool, so the pool can go away first.
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        var generation = 0
        var job: ((Int) -> Void)?
        var remaining = 0
        var busy = false
        var shuttingDown = false

        func workerLoop(index: Int) {
            var seen = 0
            condition.lock()
            while true {
                while generation == seen && !shuttingDown { condition.wait() }
                if shuttingDown {
                    condition.unlock()
                    return
                }
                seen = generation
                let body = job!
                condition.unlock()
                body(index)
                condition.lock()
                remaining -= 1
                if remaining == 0 { condition.broadcast() }
            }
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
        shared.condition.lock()
        shared.shuttingDown = true
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    /// Runs `body(worker)` once for every worker index in `0..<threadCount` and returns when all finished.
    public func run(_ body: (Int) -> Void) {
        let s = shared
        s.condition.lock()
        if s.busy || threadCount == 1 {
            s.condition.unlock()
            for worker in 0..<threadCount { body(worker) }
            return
        }
        s.busy = true
        withoutActuallyEscaping(body) { escaping in
            s.job = escaping
            s.remaining = threadCount - 1
            s.generation &+= 1
            s.condition.broadcast()
            s.condition.unlock()
            escaping(0)
            s.condition.lock()
            while s.remaining > 0 { s.condition.wait() }
            s.job = nil
            s.busy = false
            s.condition.unlock()
        }
    }

    /// Splits `0..<count` into `threadCount` contiguous ranges (sizes differ by at most one, rounded to
    /// `granularity`) and runs `body(range, worker)` for each non-empty one in parallel.
    public func parallelFor(_ count: Int, granularity: Int = 1, _ body: (Range<Int>, Int) -> Void) {
        guard count > 0 else { return }
        let units = (count + granularity - 1) / granularity
        if units == 1 || threadCount == 1 {
            body(0..<count, 0)
            return
        }
        let workers = min(threadCount, units)
        run { worker in
            guard worker < workers else { return }
            let range = Self.split(units, parts: workers, part: worker)
            let lower = range.lowerBound * granularity
            let upper = min(count, range.upperBound * granularity)
            if lower < upper { body(lower..<upper, worker) }
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
