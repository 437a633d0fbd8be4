/// Writes a streamed response. `start` sends the head (status and headers added to the response's own);
/// the first `write` starts with the response's status if `start` was not called. Until the head is sent,
/// any thrown error still becomes a proper error response.
public protocol StreamWriter: AnyObject {
    func start(status: Int, headers: [(String, String)])
    @discardableResult func write(_ bytes: [UInt8]) -> Bool
    var started: Bool { get }
    var clientGone: Bool { get }
}

/// A response: status, headers and either a complete body or a producer that streams it.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        /// Produces the body through a `StreamWriter`. Errors thrown after the head was sent are logged and cut
        /// the body short.
        case stream(@Sendable (StreamWriter) throws -> Void)
    }

    public var status: Int
    public var headers: [(String, String)]
    public var body: Body
    /// Index of the route that produced it (`Router.routeLabels`), set by `HTTPApplication` for metrics.
    public var route: Int?

    public init(status: Int = 200, headers: [(String, String)] = [], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json(_ value: JSON, status: Int = 200, headers: [(String, String)] = []) -> HTTPResponse {
        json(encoded: value.encoded(), status: status, headers: headers)
    }

    /// A body already written as JSON (hot paths that write their bytes directly rather than build a `JSON`).
    public static func json(encoded body: [UInt8], status: Int = 200, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: .bytes(body))
    }

    public static func noContent(headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: 204, headers: headers)
    }

    public static func error(_ error: APIError, requestId: String?) -> HTTPResponse {
        var r = json(error.body(requestId: requestId), status: error.status, headers: [("Cache-Control", "no-store")])
        if let seconds = error.retryAfter {
            r.headers.append(("Retry-After", String(seconds)))
        } else if error.status == 429 && error.code == "statement_timeout" {
            r.headers.append(("Retry-After", "1"))
        }
        return r
    }

    public func header(_ name: String) -> String? {
        headers.first { Self.sameName($0.0, name) }?.1
    }

    public mutating func setHeader(_ name: String, _ value: String) {
        headers.removeAll { Self.sameName($0.0, name) }
        headers.append((name, value))
    }

    /// Header names compared ASCII case-insensitively, without building lower-cased copies (every response
    /// looks up a few headers; `lowercased()` allocated two strings per header per lookup).
    static func sameName(_ a: String, _ b: String) -> Bool {
        var i = a.utf8.makeIterator(), j = b.utf8.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return true
            case let (x?, y?) where x == y || lower(x) == lower(y): continue
            default: return false
            }
        }
    }

    private static func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c + 32 : c }

    public static let reasons: [Int: String] = [
        200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 304: "Not Modified",
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
        409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity",
        429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
        504: "Gateway Timeout",
    ]
}
