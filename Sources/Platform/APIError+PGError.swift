import HTTPKit
import Observability
import Postgres

/// Database errors render through the one SQLSTATE table wherever they surface (warehouse or metadata
/// database), so no route translates them. Client-side failures (no SQLSTATE from the server) become 503
/// and their text goes to the log only, so hosts and roles never reach clients.
extension PGError: HTTPResponseError {
    public func apiError(requestId: String?) -> APIError {
        APIError(self, requestId: requestId)
    }
}

extension APIError {
    public init(_ error: PGError, requestId: String? = nil) {
        let (status, code) = SQLStateStatus.map(error.sqlstate)
        if error.connectionLost || status == 503 {
            Log.warning("database_unavailable", [("request_id", requestId), ("sqlstate", error.sqlstate), ("error", error.message)])
            self.init(503, code, "The database is unavailable; try again shortly")
            return
        }
        if status == 429 {
            self.init(429, code, "Query exceeded the statement timeout and was cancelled")
            return
        }
        self.init(status, code, error.message, hint: error.hint, details: error.detail)
        if let position = error.position { extra["position"] = .int(position) }
    }
}
