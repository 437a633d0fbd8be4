import Observability

/// An error that knows its HTTP meaning: the HTTP layer renders every conforming error through the one
/// contract below, so call sites never translate errors. Types from lower layers (e.g. `PGError`) conform
/// in the layer that knows both, keeping dependencies pointing one way.
public protocol HTTPResponseError: Error {
    func apiError(requestId: String?) -> APIError
}

/// The one error contract every API speaks: `{"error": "...", "status": N, "code": "..."}` plus optional
/// `hint`, `details` and `column_name` (read by CARTO's widget clients).
public struct APIError: HTTPResponseError, Sendable, CustomStringConvertible {
    public let status: Int
    public let code: String
    public let message: String
    public var hint: String?
    public var details: String?
    public var columnName: String?
    /// Extra top-level fields (e.g. Tokens API `description`).
    public var extra: [String: JSON] = [:]
    /// Seconds a client should wait before retrying (sent as `Retry-After`).
    public var retryAfter: Int?

    public init(_ status: Int, _ code: String, _ message: String, hint: String? = nil, details: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        self.details = details
    }

    public var description: String { "\(status) \(code): \(message)" }

    public func apiError(requestId: String?) -> APIError { self }

    /// How any error reaches a client: conforming errors render themselves; only unknown ones are 500.
    public static func rendering(_ error: Error, requestId: String?) -> APIError {
        if let known = error as? HTTPResponseError { return known.apiError(requestId: requestId) }
        Log.error("unhandled_error", [("request_id", requestId), ("error", String(describing: error))])
        return .internalError()
    }

    public func body(requestId: String?) -> JSON {
        var object: [String: JSON] = ["error": .string(message), "status": .number(Double(status)), "code": .string(code)]
        if let hint { object["hint"] = .string(hint) }
        if let details { object["details"] = .string(details) }
        if let columnName { object["column_name"] = .string(columnName) }
        if let requestId { object["request_id"] = .string(requestId) }
        for (k, v) in extra { object[k] = v }
        return .object(object)
    }

    public static func badRequest(_ message: String, code: String = "bad_request", hint: String? = nil) -> APIError {
        APIError(400, code, message, hint: hint)
    }
    public static func unauthorized(_ message: String = "Unauthorized", code: String = "unauthorized") -> APIError {
        APIError(401, code, message)
    }
    public static func forbidden(_ message: String = "Forbidden", code: String = "forbidden") -> APIError {
        APIError(403, code, message)
    }
    public static func notFound(_ message: String = "Not found", code: String = "not_found") -> APIError {
        APIError(404, code, message)
    }
    public static func conflict(_ message: String, code: String = "conflict") -> APIError {
        APIError(409, code, message)
    }
    public static func tooManyRequests(_ message: String, code: String = "too_many_requests") -> APIError {
        APIError(429, code, message)
    }
    public static func internalError(_ message: String = "Internal server error") -> APIError {
        APIError(500, "internal_error", message)
    }
    public static func unavailable(_ message: String, code: String = "unavailable") -> APIError {
        APIError(503, code, message)
    }
}
