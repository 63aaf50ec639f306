// Builds the Hummingbird application of `intern serve`: the router with its controllers and middleware
// (errors in OpenAI's shape, request metrics, API key), run in one ServiceGroup with the engine service.
// The group shuts services down in reverse order, so on SIGINT/SIGTERM the engine goes first: it cancels
// every in-flight generation (each stream ends at once with its finish chunk), after which the HTTP
// server drains quickly instead of waiting out long generations (Hummingbird template
// `Application+build.swift`).
public import Hummingbird
import InternEngine
public import Logging
import ServiceLifecycle

/// What `intern serve` configures.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 23333
    /// Required as `Authorization: Bearer KEY` on /v1 routes when set.
    public var apiKey: String?
    /// Largest accepted request body.
    public var maxBodyBytes = 8 << 20

    public init(host: String = "127.0.0.1", port: Int = 23333, apiKey: String? = nil, maxBodyBytes: Int = 8 << 20) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.maxBodyBytes = maxBodyBytes
    }
}

/// The router: /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics.
public func buildRouter(service: InferenceService, configuration: ServerConfiguration) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: OpenAIErrorMiddleware(metrics: service.metrics))
    if let key = configuration.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
    router.addRoutes(SystemController(service: service).endpoints)
    router.addRoutes(ChatCompletionsController(service: service, maxBodyBytes: configuration.maxBodyBytes).endpoints, atPath: "v1")
    router.addRoutes(CompletionsController(service: service, maxBodyBytes: configuration.maxBodyBytes).endpoints, atPath: "v1")
    return router
}

/// The application: the router on `host:port` (the inference service runs beside it; see `runServer`).
public func buildApplication(
    service: InferenceService, configuration: ServerConfiguration, logger: Logger
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(service: service, configuration: configuration),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "InternKit"),
        logger: logger)
}

/// Runs the HTTP server and the engine until SIGINT or SIGTERM, then stops the engine first (cancelling
/// in-flight requests) and the server second.
public func runServer(service: InferenceService, configuration: ServerConfiguration, logger: Logger) async throws {
    let app = buildApplication(service: service, configuration: configuration, logger: logger)
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: app), .init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
    logger.info("stopped")
}

// MARK: - Middleware

/// Turns every error into OpenAI's shape (Hummingbird's own 404 and 413 included) and counts every
/// response by endpoint and status.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Known routes by path; anything else as "other", so that scanners cannot grow the label set.
        let known: Set<String> = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"]
        let path = known.contains(request.uri.path) ? request.uri.path : "other"
        do {
            let response = try await next(request, context)
            metrics.countRequest(path: path, status: response.status.code)
            return response
        } catch let error as OpenAIError {
            metrics.countRequest(path: path, status: error.status.code)
            throw error
        } catch let error as any HTTPResponseError {
            metrics.countRequest(path: path, status: error.status.code)
            switch error.status {
            case .notFound: throw OpenAIError.notFound(path: request.uri.path)
            case .contentTooLarge:
                throw OpenAIError(
                    status: .contentTooLarge, message: "The request body is too large.",
                    type: "invalid_request_error", code: "request_too_large")
            default:
                let message = (error as? HTTPError)?.body ?? error.status.reasonPhrase
                throw OpenAIError(
                    status: error.status, message: message,
                    type: error.status.code < 500 ? "invalid_request_error" : "server_error")
            }
        } catch {
            metrics.countRequest(path: path, status: 500)
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            throw OpenAIError.server("\(error)")
        }
    }
}

/// Requires `Authorization: Bearer KEY` on the /v1 routes (health and metrics stay open for probes).
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path.hasPrefix("/v1") {
            guard let header = request.headers[.authorization], header == "Bearer \(key)" else { throw OpenAIError.invalidAPIKey }
        }
        return try await next(request, context)
    }
}
