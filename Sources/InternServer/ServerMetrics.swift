// The server's Prometheus metrics, kept in one swift-prometheus registry per application (not the
// process-wide swift-metrics bootstrap, so several applications can live in one test process). Names
// follow Prometheus conventions: `_total` counters, `_seconds` histograms, base units.
import Foundation
public import InternEngine
public import Prometheus

/// Counters, gauges and histograms that /metrics exports.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let promptTokens: Counter
    let completionTokens: Counter
    let timeToFirstToken: DurationHistogram
    let interTokenLatency: DurationHistogram
    let batchSize: ValueHistogram
    let queueDepth: Gauge
    let activeSequences: Gauge
    let kvReservedTokens: Gauge
    let kvUsedTokens: Gauge
    let cancelledRequests: Counter
    let prefillChunks: Counter
    /// The scheduler's prefill chunk count already added to `prefillChunks`.
    private let prefillChunksReported = LockedInt()

    public init(plan: MemoryPlan, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        promptTokens = registry.makeCounter(name: "intern_prompt_tokens_total", help: "Prompt tokens processed.")
        completionTokens = registry.makeCounter(name: "intern_completion_tokens_total", help: "Tokens generated.")
        let latencyBuckets: [Duration] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
        ]
        timeToFirstToken = registry.makeDurationHistogram(
            name: "intern_time_to_first_token_seconds", buckets: latencyBuckets,
            help: "From the request's arrival to its first generated token.")
        interTokenLatency = registry.makeDurationHistogram(
            name: "intern_inter_token_latency_seconds", buckets: latencyBuckets,
            help: "Between consecutive generated tokens of one request.")
        let batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256].map(Double.init).filter { $0 <= Double(plan.maxBatch) * 2 }
        batchSize = registry.makeValueHistogram(
            name: "intern_batch_size", buckets: batchBuckets,
            help: "Sequences advanced by one batched decode step.")
        queueDepth = registry.makeGauge(name: "intern_queue_depth", help: "Requests waiting for a slot.")
        activeSequences = registry.makeGauge(name: "intern_active_sequences", help: "Sequences holding a slot and a KV cache.")
        kvReservedTokens = registry.makeGauge(
            name: "intern_kv_reserved_tokens",
            help: "KV positions reserved by admitted requests (prompt + max_tokens).")
        kvUsedTokens = registry.makeGauge(name: "intern_kv_used_tokens", help: "KV positions filled now.")
        cancelledRequests = registry.makeCounter(
            name: "intern_cancelled_requests_total",
            help: "Requests whose client went away before the end.")
        prefillChunks = registry.makeCounter(
            name: "intern_prefill_chunks_total", help: "Prompt chunks prefilled between decode steps (--prefill-chunk).")
        // The memory plan, constant for the process.
        registry.makeGauge(name: "intern_weights_bytes", help: "Bytes of model weights.").set(Double(plan.weightsBytes))
        registry.makeGauge(name: "intern_kv_bytes_per_token", help: "KV cache bytes per position.").set(Double(plan.kvBytesPerToken))
        registry.makeGauge(name: "intern_kv_budget_bytes", help: "KV cache budget in bytes.").set(Double(plan.kvBudgetBytes))
        registry.makeGauge(name: "intern_kv_budget_tokens", help: "Concurrent KV positions the budget holds.").set(Double(plan.kvBudgetTokens))
        registry.makeGauge(name: "intern_max_batch", help: "Most sequences in one batch.").set(Double(plan.maxBatch))
        registry.makeGauge(name: "intern_context_length", help: "Most positions per sequence.").set(Double(plan.contextLength))
        registry.makeGauge(name: "intern_queue_capacity", help: "Most requests waiting before 429.").set(Double(plan.queueCapacity))
    }

    /// Counts a finished HTTP request by endpoint and status.
    func countRequest(path: String, status: Int) {
        registry.makeCounter(
            name: "intern_requests_total", labels: [("endpoint", path), ("status", String(status))],
            help: "HTTP requests by endpoint and status."
        ).increment()
    }

    func update(_ stats: SchedulerStats) {
        queueDepth.set(Double(stats.queued))
        activeSequences.set(Double(stats.active))
        kvReservedTokens.set(Double(stats.kvReservedTokens))
        kvUsedTokens.set(Double(stats.kvUsedTokens))
        let newChunks = prefillChunksReported.advance(to: stats.prefillChunks)
        if newChunks > 0 { prefillChunks.increment(by: Int64(newChunks)) }
    }

    /// The Prometheus text exposition of every metric, the scheduler's gauges refreshed first.
    func exposition(_ stats: SchedulerStats) -> String {
        update(stats)
        return registry.emitToString()
    }
}

/// An integer that only grows, under a lock.
private final class LockedInt: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    /// Sets the value to `newValue` if larger; returns by how much it grew.
    func advance(to newValue: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let grown = max(0, newValue - value)
        value += grown
        return grown
    }
}
