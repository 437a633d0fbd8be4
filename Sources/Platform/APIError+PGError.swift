import HTTPKit
import Observability
import Postgres

extension APIError {
    /// Converts a database error through the one SQLSTATE table. Client-side failures (no SQLSTATE from the
    /// server) become 503 and their text goes to the log only, so hosts and roles never reach clients.
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
    }

    /// Runs `body`, turning database errors into API errors.
    public static func mapping<T>(requestId: String? = nil, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as PGError { throw APIError(e, requestId: requestId) }
    }
}
