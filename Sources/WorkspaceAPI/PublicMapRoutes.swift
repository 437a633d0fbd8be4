import CryptoSupport
import Foundation
import HTTPKit
import Platform

/// `GET /api/v3/maps/public/{id}`: a map the way fetchMap reads it (contract §6, §14(c)), with the map's
/// own API access token (grants = its datasets' sources). Public maps are anonymous; a private map is
/// shown only to whom `Principal.authorize(map:)` allows, and is "not found" to everyone else.
/// What is served is the published version (`MapRecord.served*`).
///
/// A public map with a password answers 401 `map_password_required` until the caller presents a grant:
/// `POST /api/v3/maps/public/{id}/access {"password"}` returns a short-lived signed grant, which the GET
/// takes as the `X-Map-Grant` header or the `grant` query parameter. The map token is handed out only
/// with a valid grant. Wrong passwords are throttled per (client address, map).
struct PublicMapRoutes {
    let services: Services
    var store: MapStore { MapStore(pool: services.metadata) }
    /// Short, so that a map made private again stops being served from browser caches soon.
    static let publicMaxAge = 30
    /// How long a grant opens the map before the password is asked again.
    static let grantTTL = 3600
    /// A few free guesses, then 30 s, 60 s, … up to 15 minutes between guesses for one address and map.
    static let throttlePolicy: LoginThrottlePolicy = {
        var p = LoginThrottlePolicy()
        p.freeFailures = 5
        p.firstDelay = 30
        p.maxDelay = 900
        return p
    }()

    func register(_ r: Router) {
        r.get("/api/v3/maps/public/{id}", show)
        r.post("/api/v3/maps/public/{id}/access", access)
    }

    var notFound: APIError { APIError.notFound("Map not found", code: "map_not_found") }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let map = try store.find(id: request.pathParameters["id"]!, account: nil) else { throw notFound }
        if !map.isPublic {
            // Bad or foreign credentials are indistinguishable from none: the map's existence is not revealed.
            guard let principal = try? services.auth.authenticate(request, api: "maps"),
                  (try? principal.authorize(map: map.accountId, owner: map.ownerId, privacy: map.privacyLevel, .read)) != nil else {
                throw notFound
            }
        } else if let hash = map.passwordHash {
            let presented = try request.header("X-Map-Grant") ?? request.queryParameters()["grant"]
            guard let grant = presented, !grant.isEmpty else {
                throw APIError.unauthorized("This map is protected by a password", code: "map_password_required")
            }
            guard validGrant(grant, map: map.id, hash: hash) else {
                throw APIError.unauthorized("The map's access grant is invalid or expired: enter the password again",
                                            code: "map_password_required")
            }
        }
        let tokenId = try store.ensureToken(map)
        let body: JSON = [
            "id": .string(map.id), "title": .string(map.servedTitle), "description": .string(map.servedDescription),
            "privacy": .string(map.privacy), "createdAt": .string(map.createdAt),
            "updatedAt": .string(map.publishedAt ?? map.updatedAt),
            "token": .string(services.auth.apiTokenString(account: map.accountId, id: tokenId)),
            "keplerMapConfig": map.servedConfig ?? MapDocument.defaultConfig, "datasets": map.servedDatasets ?? .array([]),
        ]
        let cache = map.isPublic && map.passwordHash == nil ? "public, max-age=\(Self.publicMaxAge)" : "private, no-store"
        return .json(body, headers: [("Cache-Control", cache)])
    }

    /// Trades the password for a grant. Unknown, non-public and unprotected maps are all "not found" here:
    /// the password step exists only where one is set.
    func access(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let map = try store.find(id: request.pathParameters["id"]!, account: nil), map.isPublic,
              let hash = map.passwordHash else { throw notFound }
        let p = try services.parameters(request)
        guard let password = p.string("password"), !password.isEmpty else {
            throw APIError.badRequest("Missing required parameter: password", code: "missing_parameter")
        }
        var throttle = LoginThrottle(services.metadata)
        throttle.policy = Self.throttlePolicy
        let key = "map:\(map.id)"
        if let wait = try throttle.retryAfter(email: key, ip: request.remoteAddress) {
            let seconds = Int(wait.rounded(.up))
            var error = APIError.tooManyRequests("Too many wrong passwords for this map. Try again in \(seconds) s.",
                                                 code: "map_password_throttled")
            error.extra["retry_after"] = .int(seconds)
            var response = HTTPResponse.error(error, requestId: request.requestId)
            response.setHeader("Retry-After", String(seconds))
            return response
        }
        guard PasswordHasher.verify(password, against: hash) else {
            try throttle.recordFailure(email: key, ip: request.remoteAddress)
            throw APIError.unauthorized("Wrong password for this map", code: "map_password_invalid")
        }
        try throttle.clear(email: key, ip: request.remoteAddress)
        let grant = JWT(key: services.secrets.mapGrantKey).sign([
            "map": .string(map.id), "pw": .string(fingerprint(hash)),
            "exp": .int(Int(Date().timeIntervalSince1970) + Self.grantTTL),
        ])
        return .json(["grant": .string(grant), "expiresIn": .int(Self.grantTTL)], headers: [("Cache-Control", "no-store")])
    }

    /// Ties a grant to the password it was given for: a new password ends every grant of the old one.
    func fingerprint(_ hash: String) -> String {
        String(Encoding.base64URL(Crypto.hmacSHA256(key: services.secrets.mapGrantKey, data: Array(hash.utf8))).prefix(22))
    }

    func validGrant(_ grant: String, map id: String, hash: String) -> Bool {
        guard let claims = try? JWT(key: services.secrets.mapGrantKey).verify(grant), claims["exp"] != nil else { return false }
        return claims["map"]?.stringValue == id && claims["pw"]?.stringValue == fingerprint(hash)
    }
}
