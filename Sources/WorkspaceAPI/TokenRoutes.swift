import Foundation
import HTTPKit
import Platform

/// Tokens API v3 (contract §7): API Access Tokens with grants, referers, allowed APIs and expiry.
/// Only users (session or OAuth token) may manage tokens.
struct TokenRoutes {
    let services: Services
    var store: TokenStore { TokenStore(services.metadata) }
    static let apis: Set<String> = ["sql", "maps", "imports", "lds", "workflows"]

    func register(_ r: Router) {
        r.get("/api/v3/tokens", list)
        r.post("/api/v3/tokens", create)
        r.get("/api/v3/tokens/{token}", show)
        r.patch("/api/v3/tokens/{token}", update)
        r.delete("/api/v3/tokens/{token}", delete)
    }

    func tokenString(_ t: TokenRecord) -> String { services.auth.apiTokenString(account: t.accountId, id: t.id) }

    /// The token string only for its creator or an admin (who may also read the token itself); nobody else
    /// reaches this (`Principal.authorize(token:)`), but the rule stays explicit where the string is made.
    func body(_ t: TokenRecord, for principal: Principal) -> JSON {
        guard case .object(var o) = t.json() else { return .null }
        if principal.mayRead(token: t.createdBy, account: t.accountId) { o["token"] = .string(tokenString(t)) }
        return .object(o)
    }

    /// The token the path names, if this principal may `action` it (otherwise: not found).
    func authorizedToken(_ request: HTTPRequest, _ principal: Principal, _ action: Principal.TokenAction) throws -> TokenRecord {
        guard let token = try store.find(id: tokenId(request), account: principal.accountId) else { throw APIError.notFound("Token not found") }
        try principal.authorize(token: token.createdBy, account: token.accountId, action)
        return token
    }

    /// `{token}` may be the token string or its id.
    func tokenId(_ request: HTTPRequest) -> String {
        let raw = request.pathParameters["token"]!
        if let claims = try? services.auth.jwt.verify(raw), let id = claims["jti"]?.stringValue { return id }
        return raw
    }

    static func tokenError(_ message: String) -> APIError {
        var e = APIError.badRequest(message, code: "invalid_token_definition")
        e.extra["description"] = .string(message)
        return e
    }

    func parseGrants(_ p: Parameters) throws -> [Grant]? {
        guard let value = try p.json("grants") else { return nil }
        guard let items = value.arrayValue else { throw Self.tokenError("grants must be an array") }
        return try items.map { item in
            guard let connection = item["connection_name"]?.stringValue, !connection.isEmpty,
                  let source = item["source"]?.stringValue, !source.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw Self.tokenError("each grant needs connection_name and source")
            }
            return Grant(connectionName: connection, source: source)
        }
    }

    func parseStrings(_ p: Parameters, _ name: String) throws -> [String]? {
        guard let value = try p.json(name) else { return nil }
        guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
            throw Self.tokenError("\(name) must be an array of strings")
        }
        return items.compactMap(\.stringValue)
    }

    func validateAPIs(_ apis: [String]) throws {
        if let bad = apis.first(where: { !Self.apis.contains($0) }) {
            throw Self.tokenError("Unknown API in allowed_apis: \(bad). Use \(Self.apis.sorted().joined(separator: ", "))")
        }
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireUser()
        let tokens = try store.list(account: principal.accountId).filter { principal.mayRead(token: $0.createdBy, account: $0.accountId) }
        return .json(["results": .array(tokens.map { body($0, for: principal) }), "total": .int(tokens.count)],
                     headers: [("Cache-Control", "no-store")])
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let p = try services.parameters(request)
        let grants = try parseGrants(p) ?? []
        let apis = try parseStrings(p, "allowed_apis") ?? ["sql", "maps"]
        try validateAPIs(apis)
        let referers = try parseStrings(p, "referers") ?? []
        var expires: Date?
        if let text = p.string("expiration_date"), !text.isEmpty {
            guard let date = TokenRecord.parseDate(text) else { throw Self.tokenError("expiration_date must be an ISO 8601 date") }
            guard date > Date() else { throw Self.tokenError("expiration_date must be in the future") }
            expires = date
        }
        let connections = Set(try ConnectionStore(services.metadata).list(account: principal.accountId).map(\.name))
        if let unknown = grants.first(where: { !connections.contains($0.connectionName) }) {
            throw Self.tokenError("Unknown connection in grants: \(unknown.connectionName)")
        }
        let token = try store.create(account: principal.accountId, createdBy: userId, grants: grants, referers: referers,
                                     allowedAPIs: apis, expiresAt: expires)
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(userId)", action: "token_created",
                                           target: token.id, requestId: request.requestId)
        return .json(body(token, for: principal), status: 201, headers: [("Cache-Control", "no-store")])
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let token = try authorizedToken(request, principal, .read)
        return .json(body(token, for: principal), headers: [("Cache-Control", "no-store")])
    }

    /// Grants, referers and APIs may change; the expiry is fixed at creation (contract §7).
    func update(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let p = try services.parameters(request)
        if p.has("expiration_date") { throw Self.tokenError("expiration_date can only be set when the token is created") }
        let apis = try parseStrings(p, "allowed_apis")
        if let apis { try validateAPIs(apis) }
        let id = try authorizedToken(request, principal, .change).id
        let grants = try parseGrants(p)
        if let grants, try store.find(id: id)?.mapId != nil, grants.contains(where: \.isWildcardAll) {
            throw Self.tokenError("A map's token cannot have a * grant: anyone who opens the map would get it")
        }
        guard let token = try store.update(id: id, account: principal.accountId, grants: grants,
                                           referers: try parseStrings(p, "referers"), allowedAPIs: apis) else {
            throw APIError.notFound("Token not found")
        }
        services.auth.forgetToken(id: id)
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(userId)", action: "token_updated",
                                           target: id, requestId: request.requestId)
        return .json(body(token, for: principal))
    }

    func delete(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let id = try authorizedToken(request, principal, .change).id
        guard try store.delete(id: id, account: principal.accountId) else { throw APIError.notFound("Token not found") }
        services.auth.forgetToken(id: id)
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(userId)", action: "token_deleted",
                                           target: id, requestId: request.requestId)
        return .noContent()
    }
}
