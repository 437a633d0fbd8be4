import CryptoSupport
import Foundation
import HTTPKit
import Postgres

/// Turns a request's credentials into a `Principal`: a Bearer header (wins), an `access_token` query
/// parameter, or the session cookie. Revocation is seen within `tokenCacheTTL` seconds even when Redis
/// still holds the token, because cached entries live no longer than that.
public final class Authenticator: Sendable {
    public static let sessionCookie = "__Host-tessera_session"
    /// Redis TTL (3 s) + local memo TTL (1 s) bound how long a deleted token can still pass (4 s).
    static let tokenCacheTTL = 3
    let tokens = LocalMemo<TokenRecord>(ttl: 1)
    let roles = LocalMemo<Principal.Role>(ttl: 1)
    /// Verified signatures are deterministic, so verification results can be kept (revocation is separate).
    let verified = LocalMemo<[String: JSON]>(ttl: 60)

    let metadata: PGPool
    let cache: Cache
    public let jwt: JWT

    public init(metadata: PGPool, cache: Cache, secrets: Secrets) {
        self.metadata = metadata
        self.cache = cache
        self.jwt = JWT(key: secrets.tokenSigningKey)
    }

    /// The bearer token of a request, if any.
    public static func bearerToken(_ request: HTTPRequest) throws -> String? {
        if let header = request.header("authorization") {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
                throw APIError.unauthorized("Authorization header must be 'Bearer <token>'", code: "invalid_token")
            }
            return String(parts[1].drop { $0 == " " })
        }
        if let token = try request.queryParameters()["access_token"], !token.isEmpty { return token }
        return nil
    }

    /// Authenticates for `api` (`sql`, `maps`, `imports`, `lds`, or nil for workspace APIs).
    public func authenticate(_ request: HTTPRequest, api: String?) throws -> Principal {
        if let token = try Authenticator.bearerToken(request) {
            return try verifyToken(token, request: request, api: api)
        }
        if let sessionId = Authenticator.cookie(request, named: Authenticator.sessionCookie) {
            if let principal = try sessionPrincipal(sessionId, request: request) { return principal }
            throw APIError.unauthorized("Session expired or signed out", code: "session_expired")
        }
        throw APIError.unauthorized("Token not defined", code: "token_missing")
    }

    func verifyToken(_ token: String, request: HTTPRequest, api: String?) throws -> Principal {
        let claims: [String: JSON]
        do {
            claims = try verified.value(token) { try jwt.verify(token) }!
            if let exp = claims["exp"]?.doubleValue, exp <= Date().timeIntervalSince1970 { throw JWT.Failure.expired }
        } catch JWT.Failure.expired {
            throw APIError.unauthorized("Token expired", code: "token_expired")
        } catch {
            throw APIError.unauthorized("Invalid token", code: "invalid_token")
        }
        if let tokenId = claims["jti"]?.stringValue, let account = claims["a"]?.stringValue {
            return try apiTokenPrincipal(id: tokenId, account: account, request: request, api: api)
        }
        guard let userId = claims["sub"]?.stringValue, claims["aud"] != nil,
              let account = claims["\(JWT.namespace)/account_id"]?.stringValue else {
            throw APIError.unauthorized("Invalid token", code: "invalid_token")
        }
        guard let role = try userRole(userId: userId, account: account, clientId: claims["azp"]?.stringValue) else {
            throw APIError.unauthorized("Token revoked", code: "token_revoked")
        }
        return Principal(accountId: account, userId: userId, kind: .user(role: role, viaSession: false),
                         expiresAt: claims["exp"]?.doubleValue.map(Date.init(timeIntervalSince1970:)))
    }

    // MARK: API Access Tokens

    func apiTokenPrincipal(id: String, account: String, request: HTTPRequest, api: String?) throws -> Principal {
        let record = try tokens.value(id) { () -> TokenRecord? in
            guard UUID(uuidString: id) != nil, let bytes = try cache.fetch("token:\(id)", ttl: Authenticator.tokenCacheTTL, load: {
                try TokenStore(metadata).find(id: id)?.cacheEntry()
            }) else { return nil }
            return try? TokenRecord(cacheEntry: bytes)
        }
        guard let record, record.accountId == account else {
            throw APIError.unauthorized("Token revoked or unknown", code: "token_revoked")
        }
        if let expires = record.expiresAt, expires <= Date() {
            throw APIError.unauthorized("Token expired", code: "token_expired")
        }
        // A token acts for its creator, so it lives only while the creator is an active member, and never
        // does more than the creator's current role allows (checked here, before any event subscriber runs).
        // A map's token belongs to the map instead, and only ever reads.
        var creatorRole: Principal.Role?
        if record.mapId == nil {
            guard let creator = record.createdBy, let role = try userRole(userId: creator, account: account, clientId: nil) else {
                throw APIError.unauthorized("Token revoked: its creator is no longer a member", code: "token_revoked")
            }
            creatorRole = role
        }
        guard let api else {
            throw APIError.forbidden("API access tokens cannot use this API; use an OAuth access token", code: "user_token_required")
        }
        guard record.allowedAPIs.contains(api) else {
            throw APIError.forbidden("Token does not allow the \(api) API", code: "api_not_allowed")
        }
        if !record.referers.isEmpty {
            let sent = request.header("origin") ?? request.header("referer") ?? ""
            guard record.referers.contains(where: { Authenticator.refererMatches(sent, pattern: $0) }) else {
                throw APIError.forbidden("Referer not allowed for this token", code: "referer_not_allowed")
            }
        }
        return Principal(accountId: record.accountId, userId: record.createdBy, kind: .apiToken(id: record.id, grants: record.grants),
                         expiresAt: record.expiresAt, creatorRole: creatorRole, mapId: record.mapId)
    }

    /// `https://app.example.com/`, `https://*.example.com` or a bare host; compared on scheme + host (+ port).
    static func refererMatches(_ sent: String, pattern: String) -> Bool {
        guard let sentURL = URL(string: sent), let sentHost = sentURL.host?.lowercased() else { return false }
        let p = pattern.lowercased()
        let patternURL = URL(string: p.contains("://") ? p : "https://\(p)")
        guard var host = patternURL?.host else { return false }
        if p.contains("://"), patternURL?.scheme != sentURL.scheme { return false }
        if let port = patternURL?.port, port != sentURL.port { return false }
        if host.hasPrefix("*.") {
            host.removeFirst(2)
            return sentHost.hasSuffix("." + host)
        }
        return sentHost == host
    }

    // MARK: users (OAuth tokens and sessions)

    /// The user's current role, or nil when the user or the OAuth client is gone.
    func userRole(userId: String, account: String, clientId: String?) throws -> Principal.Role? {
        let key = "user:\(userId):\(clientId ?? "-")"
        return try roles.value(key) { () -> Principal.Role? in
        // Checked on a miss only (an invalid id is never remembered): Foundation parses it with sscanf,
        // which cost every token request about 1% of maps-api's CPU per tile (perf).
        guard UUID(uuidString: userId) != nil else { return nil }
        let bytes = try cache.fetch(key, ttl: Authenticator.tokenCacheTTL) { () -> [UInt8]? in
            try metadata.withConnection { db -> [UInt8]? in
                let r = try db.execute("""
                    SELECT u.role FROM users u
                    WHERE u.id = $1 AND u.account_id = $2
                      AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM oauth_clients c WHERE c.client_id = $3 AND c.user_id = u.id))
                    """, [userId, account, clientId], prepare: true)
                return r.rowCount == 1 ? Array((r.string(0, 0) ?? "").utf8) : nil
            }
        }
        return bytes.flatMap { Principal.Role(rawValue: String(decoding: $0, as: UTF8.self)) }
        }
    }

    func sessionPrincipal(_ sessionId: String, request: HTTPRequest) throws -> Principal? {
        let hash = Encoding.hex(Crypto.sha256(Array(sessionId.utf8)))
        return try metadata.withConnection { db -> Principal? in
            let r = try db.execute("""
                SELECT u.id, u.account_id, u.role, s.csrf_token, extract(epoch FROM s.expires_at)::float8
                FROM sessions s JOIN users u ON u.id = s.user_id
                WHERE s.id_hash = decode($1, 'hex') AND s.expires_at > now()
                """, [hash], prepare: true)
            guard r.rowCount == 1, let role = Principal.Role(rawValue: r.string(0, 2) ?? "") else { return nil }
            guard Authenticator.csrfSatisfied(request, sessionToken: r.string(0, 3) ?? "") else {
                throw APIError.forbidden("Missing or invalid CSRF token", code: "csrf_failed")
            }
            return Principal(accountId: r.string(0, 1)!, userId: r.string(0, 0), kind: .user(role: role, viaSession: true),
                             expiresAt: r.double(0, 4).map(Date.init(timeIntervalSince1970:)))
        }
    }

    /// The CSRF policy of every cookie-authenticated request, whatever its method: cookies ride along on
    /// cross-site requests (a link, an <img>, a form), so the request must prove it comes from our pages.
    /// State changes need the session's CSRF token in `X-CSRF-Token`; reads accept that or the browser's own
    /// same-origin signal (`Sec-Fetch-Site: same-origin`, or an `Origin` naming this host), so a page can
    /// fetch `/api/v3/me` to learn its token.
    static func csrfSatisfied(_ request: HTTPRequest, sessionToken: String) -> Bool {
        if let sent = request.header("x-csrf-token"), !sessionToken.isEmpty,
           Crypto.constantTimeEqual(Array(sent.utf8), Array(sessionToken.utf8)) { return true }
        guard ["GET", "HEAD", "OPTIONS"].contains(request.method) else { return false }
        return isSameOrigin(request) == true
    }

    /// What the browser says about where a request comes from: true (same origin), false (another site)
    /// or nil (it says nothing: not a browser, or a very old one).
    public static func isSameOrigin(_ request: HTTPRequest) -> Bool? {
        if let site = request.header("sec-fetch-site")?.lowercased() {
            if site == "same-origin" || site == "none" { return true }
            return false
        }
        if let origin = request.header("origin") {
            guard let host = request.header("x-forwarded-host") ?? request.header("host"),
                  let url = URL(string: origin), let originHost = url.host else { return false }
            let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
            return originAuthority.lowercased() == host.lowercased()
        }
        return nil
    }

    /// Sign-in and sign-up forms cannot be posted from another site (login CSRF: signing the victim into
    /// the attacker's account). Browsers always send `Origin` or `Sec-Fetch-Site` on a cross-site POST.
    public static func requireSameOriginForm(_ request: HTTPRequest) throws {
        if isSameOrigin(request) == false {
            throw APIError.forbidden("Cross-site sign-in requests are refused", code: "csrf_failed")
        }
    }

    /// The OAuth client ids of a user: their cached roles are filed per client (see `userRole`).
    public func oauthClientIds(of userId: String) throws -> [String] {
        guard UUID(uuidString: userId) != nil else { return [] }
        return try metadata.withConnection { db in
            let r = try db.execute("SELECT client_id FROM oauth_clients WHERE user_id = $1", [userId])
            return (0..<r.rowCount).compactMap { r.string($0, 0) }
        }
    }

    /// Forget a user's cached role at once (removal, role change), for their API tokens (`-`) and each
    /// OAuth client; other processes see it within the TTL.
    public func forgetUser(id: String, clientIds: [String]) {
        for key in (["-"] + clientIds).map({ "user:\(id):\($0)" }) {
            roles.remove(key)
            cache.invalidate(key)
        }
    }

    public static func cookie(_ request: HTTPRequest, named name: String) -> String? {
        guard let header = request.header("cookie") else { return nil }
        for part in header.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == name {
                return String(kv[1]).trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// The token string of an API Access Token: a short HS256 JWT `{"a": account, "jti": id}`, so it can be shown again.
    public func apiTokenString(account: String, id: String) -> String {
        jwt.sign(["a": .string(account), "jti": .string(id)])
    }

    /// Forget a token at once (deletion); other VMs see it within the cache TTL anyway.
    public func forgetToken(id: String) {
        tokens.remove(id)
        cache.invalidate("token:\(id)")
    }
}
