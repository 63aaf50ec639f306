// GET /v1/models, GET /health and GET /metrics (Prometheus text exposition format 0.0.4).
import Foundation
public import Hummingbird
import NIOCore

/// Model listing, liveness and metrics.
public struct SystemController<Context: RequestContext>: Sendable {
    let service: InferenceService

    public var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("v1/models", use: models)
        routes.get("v1/models/:id", use: model)
        routes.get("health", use: health)
        routes.get("metrics", use: metrics)
        return routes
    }

    private var card: ModelCard {
        ModelCard(id: service.modelName, created: service.created, maxModelLen: service.plan.contextLength)
    }

    @Sendable func models(request: Request, context: Context) async throws -> Response {
        try jsonResponse(ModelList(data: [card]))
    }

    @Sendable func model(request: Request, context: Context) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        try service.checkModel(id)
        return try jsonResponse(card)
    }

    @Sendable func health(request: Request, context: Context) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\": \"ok\"}")))
    }

    @Sendable func metrics(request: Request, context: Context) async throws -> Response {
        let text = service.metrics.exposition(service.scheduler.stats)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
