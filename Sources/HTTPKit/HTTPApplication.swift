import Foundation
import Observability
import SQLKit

/// Wraps a router with what every API response needs: the request id, CORS, the error contract
/// and one access-log line per request.
public final class HTTPApplication: Sendable {
    public let router: Router
    public let name: String

    public let requests: RequestMetrics

    public init(name: String, router: Router) {
        self.name = name
        self.router = router
        self.requests = RequestMetrics(routes: router.routeLabels)
    }

    static let allowHeaders = "Authorization, Content-Type, Accept, Cache-Control, If-Modified-Since, X-Requested-With, X-CSRF-Token"
    static let allowMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"

    /// Handles one request; never throws — every failure becomes a JSON error response.
    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        var response: HTTPResponse
        if request.method == "OPTIONS" {
            response = HTTPResponse(status: 204, headers: [
                ("Access-Control-Allow-Methods", Self.allowMethods),
                ("Access-Control-Allow-Headers", Self.allowHeaders),
                ("Access-Control-Max-Age", "86400"),
            ])
        } else {
            let (match, route) = router.lookup(method: request.method, path: request.path)
            switch match {
            case .found(let handler, let params):
                request.pathParameters = params
                do {
                    response = try handler(request)
                } catch {
                    response = .error(.rendering(error, requestId: request.requestId), requestId: request.requestId)
                }
            case .methodNotAllowed(let allowed):
                response = .error(APIError(405, "method_not_allowed", "Method \(request.method) not allowed"), requestId: request.requestId)
                response.headers.append(("Allow", (allowed + ["OPTIONS"]).joined(separator: ", ")))
            case .notFound:
                response = .error(.notFound("Route not found: \(request.path)", code: "route_not_found"), requestId: request.requestId)
            }
            response.route = route
        }
        response.setHeader("X-Request-Id", request.requestId)
        if response.header("Access-Control-Allow-Origin") == nil {
            response.headers.append(("Access-Control-Allow-Origin", "*"))
            response.headers.append(("Access-Control-Expose-Headers", "X-Request-Id, Content-Length"))
        }
        return response
    }
}
