import Foundation
// Every failure the server reports, in OpenAI's error shape: an HTTP status and
// `{"error": {"message", "type", "param", "code"}}` (https://platform.openai.com/docs/guides/error-codes).
// Follows Hummingbird's `HTTPError`: a value that is both the thrown error and its own response.
public import Hummingbird
import NIOCore

/// An error response in OpenAI's shape.
public struct OpenAIError: HTTPResponseError, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, `rate_limit_error`, `server_error`.
    public var type: String
    /// The request field at fault, as a path (`messages[1].role`), when there is one.
    public var param: String?
    public var code: String?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    /// 400: the request is malformed or a field is wrong; `param` names the field.
    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> OpenAIError {
        OpenAIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    public static func modelNotFound(_ name: String, available: String) -> OpenAIError {
        OpenAIError(
            status: .notFound, message: "The model '\(name)' does not exist; this server serves '\(available)'.",
            type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    public static let invalidAPIKey = OpenAIError(
        status: .unauthorized, message: "Missing or incorrect API key: send it as 'Authorization: Bearer KEY'.",
        type: "authentication_error", code: "invalid_api_key")

    public static func queueFull(_ message: String) -> OpenAIError {
        OpenAIError(status: .tooManyRequests, message: message, type: "rate_limit_error", code: "rate_limit_exceeded")
    }

    public static func bodyTooLarge(limit: Int) -> OpenAIError {
        OpenAIError(
            status: .contentTooLarge, message: "The request body is larger than \(limit) bytes.",
            type: "invalid_request_error", code: "request_too_large")
    }

    public static func notFound(path: String) -> OpenAIError {
        OpenAIError(status: .notFound, message: "No route for \(path).", type: "invalid_request_error", code: "not_found")
    }

    public static func server(_ message: String) -> OpenAIError {
        OpenAIError(status: .internalServerError, message: message, type: "server_error", code: "internal_error")
    }

    /// The JSON body.
    public var body: ErrorBody { ErrorBody(error: .init(message: message, type: type, param: param, code: code)) }

    public struct ErrorBody: Codable, Equatable, Sendable {
        public struct Detail: Codable, Equatable, Sendable {
            public var message: String
            public var type: String
            public var param: String?
            public var code: String?
            public func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(message, forKey: .message)
                try c.encode(type, forKey: .type)
                try c.encode(param, forKey: .param)  // null, not absent, as OpenAI sends it
                try c.encode(code, forKey: .code)
            }
        }
        public var error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = (try? JSONEncoder.openAI.encode(body)) ?? Data("{\"error\": {\"message\": \"error\"}}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension JSONEncoder {
    /// Compact, unescaped slashes, keys in declaration order (CodingKeys).
    static var openAI: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }
}
