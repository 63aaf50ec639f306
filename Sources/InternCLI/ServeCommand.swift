// `intern serve`: an OpenAI-compatible HTTP server over one model, with continuous batching.
import ArgumentParser
import Foundation
import InternEngine
import InternModels
import InternServer
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over an OpenAI-compatible HTTP API.",
        discussion: """
            Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET /metrics.
            Requests join a running batch between decode steps; a request whose prompt + max_tokens does not fit
            the KV budget now waits in the queue, and a full queue answers 429. SIGINT or SIGTERM stops the
            server, cancelling requests still running.
            """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 23333

    @Option(help: "Require 'Authorization: Bearer KEY' on /v1 routes.")
    var apiKey: String?

    @Option(help: "Most sequences advanced together in one batched decode step.")
    var maxBatch = 8

    @Option(help: "Most positions per sequence (prompt + completion); default: the model's maximum.")
    var ctx: Int?

    @Option(help: "The model's name in the API (default: the checkpoint directory's name).")
    var modelName: String?

    @Option(help: "KV cache budget in MiB (default: --max-batch full contexts, at most half the free memory).")
    var kvCacheMib: Int?

    @Option(help: "Most requests waiting for a slot before the server answers 429.")
    var maxQueue = 256

    @Option(help: "Prompt tokens prefilled per scheduler step, between decode steps of the running requests (0: whole prompts).")
    var prefillChunk = 256

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must be at least 0") }
        guard prefillChunk >= 0 else { throw ValidationError("--prefill-chunk must be at least 0") }
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be at least 2") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "intern.serve")
        let tokenizer = try modelOptions.loadTokenizer()
        let model = try modelOptions.loadModel()
        let plan = MemoryPlan(
            model: model, weightsBytes: Self.weightsBytes(at: modelOptions.directory), maxBatch: maxBatch, contextLength: ctx,
            kvBudgetBytes: kvCacheMib.map { $0 << 20 }, queueCapacity: maxQueue, kvCacheType: modelOptions.kvCacheType)
        guard plan.kvBudgetTokens >= 1 else { throw ValidationError("the KV budget holds no token: raise --kv-cache-mib") }
        let name = modelName ?? modelOptions.directory.standardizedFileURL.lastPathComponent
        let format = try modelOptions.chatFormat(tokenizer: tokenizer)
        logger.info("memory plan: \(plan.summary)")
        let service = InferenceService(
            model: model, tokenizer: tokenizer, modelName: name, plan: plan, format: format, prefillChunk: prefillChunk, logger: logger)
        logger.info("serving '\(name)' on http://\(host):\(port)/v1")
        try await runServer(service: service, configuration: ServerConfiguration(host: host, port: port, apiKey: apiKey), logger: logger)
    }

    /// Bytes of the weights: the GGUF file, or the safetensors shards of a checkpoint directory.
    static func weightsBytes(at path: URL) -> Int {
        if path.pathExtension.lowercased() == "gguf" { return (try? path.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0 }
        let directory = path
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: [.fileSizeKey])) ?? []
        return files.filter { $0.pathExtension == "safetensors" }.reduce(0) {
            $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0)
        }
    }
}
