import Foundation
import HTTPKit

/// Caching headers of cacheable API answers (contract §1.6), for browsers and for the http-cache.
/// Browsers get `Cache-Control: private, max-age=N` and `Vary: Authorization, Origin`. Varnish stores an
/// answer only when it carries `Surrogate-Control`, filed per credential and under surrogate keys
/// (source, connection, credential) so data changes and revocations purge it; it strips these headers.
public enum CachePolicy {
    /// A request's `Cache-Control: max-age` lowers the age (minimum 10 s); `no-cache`/`no-store` disable it.
    public static func age(_ request: HTTPRequest, default maxAge: Int) -> Int {
        var age = maxAge
        if let cc = request.header("cache-control")?.lowercased() {
            if cc.contains("no-cache") || cc.contains("no-store") { return 0 }
            if let r = cc.range(of: "max-age="), let n = Int(cc[r.upperBound...].prefix { $0.isNumber }) { age = min(age, max(10, n)) }
        }
        return age
    }

    /// `sharedMaxAge` bounds how long the http-cache keeps an answer whose URL does not change with the
    /// data (SQL results): writes it does not see (another client, psql) show up after that.
    public static func headers(_ request: HTTPRequest, principal: Principal, maxAge: Int, connection: String,
                               source: String? = nil, sharedMaxAge: Int? = nil) -> [(String, String)] {
        guard request.method == "GET" || request.method == "HEAD" else { return [("Cache-Control", "no-store")] }
        var age = age(request, default: maxAge)
        // Never keep an answer longer than the credential that may see it.
        if let expires = principal.expiresAt { age = min(age, max(0, Int(expires.timeIntervalSinceNow))) }
        guard age > 0 else { return [("Cache-Control", "no-cache"), ("Vary", "Authorization, Origin")] }
        var headers = [("Cache-Control", "private, max-age=\(age)"), ("Vary", "Authorization, Origin"),
                       ("Surrogate-Control", "max-age=\(min(age, sharedMaxAge ?? age))"),
                       ("X-Connection-Key", connectionKey(account: principal.accountId, connection: connection)),
                       ("X-Credential-Key", principal.credentialKey)]
        if let source { headers.append(("X-Source-Key", source)) }
        return headers
    }

    public static func connectionKey(account: String, connection: String) -> String { "\(account):\(connection)" }
}
