import CryptoSupport
import Foundation
import HTTPKit
import Observability
import Platform
import Postgres

/// Login, logout, signup, invitations, the current user, and OAuth2 `client_credentials`.
struct AccountRoutes {
    let services: Services
    var accounts: AccountStore { AccountStore(services.metadata) }
    var sessions: SessionStore { SessionStore(services.metadata) }

    func register(_ r: Router) {
        r.post("/api/v3/auth/login", login)
        r.post("/api/v3/auth/logout", logout)
        r.post("/api/v3/auth/signup", signup)
        r.post("/api/v3/auth/invitations/accept", acceptInvitation)
        r.get("/api/v3/me", me)
        r.post("/api/oauth/token", oauthToken)
        r.get("/api/v3/oauth-clients", listClients)
        r.post("/api/v3/oauth-clients", createClient)
        r.delete("/api/v3/oauth-clients/{clientId}", deleteClient)
        r.get("/api/v3/account", account)
        r.patch("/api/v3/account", renameAccount)
    }

    /// The same status and body for unknown emails and wrong passwords, after the same hashing work.
    static let loginFailed = APIError.unauthorized("Invalid email or password", code: "invalid_credentials")

    func login(_ request: HTTPRequest) throws -> HTTPResponse {
        try Authenticator.requireSameOriginForm(request)
        let p = try services.parameters(request)
        let email = try p.required("email"), password = try p.required("password")
        let ip = request.remoteAddress
        let throttle = LoginThrottle(services.metadata)
        if let wait = try throttle.retryAfter(email: email, ip: ip) {
            let seconds = Int(wait.rounded(.up))
            var error = APIError.tooManyRequests("Too many failed sign-in attempts. Try again in \(seconds) s.", code: "login_throttled")
            error.extra["retry_after"] = .int(seconds)
            var response = HTTPResponse.error(error, requestId: request.requestId)
            response.setHeader("Retry-After", String(seconds))
            return response
        }
        guard let user = try accounts.userByEmail(email) else {
            PasswordHasher.verifyDummy(password)
            try throttle.recordFailure(email: email, ip: ip)
            throw Self.loginFailed
        }
        guard PasswordHasher.verify(password, against: user.passwordHash) else {
            try throttle.recordFailure(email: email, ip: ip)
            throw Self.loginFailed
        }
        try throttle.clear(email: email, ip: ip)
        let session = try sessions.create(userId: user.id, ttlSeconds: services.config.sessionTTL)
        AuditLog(services.metadata).record(account: user.accountId, actor: "user:\(user.id)", action: "login", requestId: request.requestId)
        var body: [String: JSON] = ["user": user.json(), "csrf_token": .string(session.csrfToken)]
        // Where the sign-in page may go next (only a path on this site), when it asked.
        if p.has("next") { body["next"] = .string(SafeRedirect.path(p.string("next"))) }
        return .json(.object(body),
                     headers: [("Set-Cookie", cookie(session.id, maxAge: services.config.sessionTTL)), ("Cache-Control", "no-store")])
    }

    func cookie(_ value: String, maxAge: Int) -> String {
        "\(Authenticator.sessionCookie)=\(value); Path=/; Max-Age=\(maxAge); Secure; HttpOnly; SameSite=Lax"
    }

    func logout(_ request: HTTPRequest) throws -> HTTPResponse {
        if let id = Authenticator.cookie(request, named: Authenticator.sessionCookie) {
            _ = try services.auth.authenticate(request, api: nil)  // CSRF check: logout is a state change too
            try sessions.delete(sessionId: id)
        }
        return .json(["ok": true], headers: [("Set-Cookie", cookie("", maxAge: 0)), ("Cache-Control", "no-store")])
    }

    func me(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let (userId, _) = try principal.requireUser()
        guard let user = try accounts.userById(userId, account: principal.accountId) else { throw APIError.unauthorized() }
        var body: [String: JSON] = [
            "user": user.json(),
            "account": ["id": .string(principal.accountId), "name": .optional(try accounts.accountName(principal.accountId))],
        ]
        if principal.viaSession, let id = Authenticator.cookie(request, named: Authenticator.sessionCookie) {
            body["csrf_token"] = .optional(try sessions.csrfToken(sessionId: id))
        }
        return .json(.object(body), headers: [("Cache-Control", "no-store")])
    }

    /// Open signup creates a new organisation; by-invitation signup joins the inviting one.
    /// Known and unknown emails get the same answer (ASVS 6.3.8).
    func signup(_ request: HTTPRequest) throws -> HTTPResponse {
        try Authenticator.requireSameOriginForm(request)
        let p = try services.parameters(request)
        if let token = p.string("invitation"), !token.isEmpty { return try acceptInvitation(request, parameters: p) }
        guard services.config.signup == .open else {
            throw APIError.forbidden("Sign-up is by invitation only", code: "signup_closed")
        }
        let email = try p.required("email"), password = try p.required("password")
        guard AccountStore.isPlausibleEmail(email) else { throw APIError.badRequest("Enter a valid email address", code: "invalid_email") }
        if let problem = PasswordHasher.policyViolation(password) { throw APIError.badRequest(problem, code: "weak_password") }
        let organization = p.string("organization").flatMap { $0.isEmpty ? nil : $0 } ?? email.split(separator: "@").last.map(String.init)!
        let hash = try PasswordHasher.hash(password)
        do {
            _ = try accounts.createOrganization(name: String(organization.prefix(200)), email: email, passwordHash: hash)
        } catch let e as PGError where e.sqlstate == "23505" {
            Log.info("signup_existing_email", [("request_id", request.requestId)])
        }
        return .json(["ok": true, "message": "If this email can be registered, you can now sign in."], status: 202)
    }

    func acceptInvitation(_ request: HTTPRequest) throws -> HTTPResponse {
        try acceptInvitation(request, parameters: try services.parameters(request))
    }

    func acceptInvitation(_ request: HTTPRequest, parameters p: Parameters) throws -> HTTPResponse {
        try Authenticator.requireSameOriginForm(request)
        let token = try p.string("invitation") ?? p.required("token")
        let password = try p.required("password")
        if let problem = PasswordHasher.policyViolation(password) { throw APIError.badRequest(problem, code: "weak_password") }
        // The cheap token check comes first: hashing (~0.2 s of CPU) is only spent on a live invitation.
        guard try accounts.invitationIsLive(token: token) else {
            throw APIError.badRequest("This invitation is invalid, expired or already used", code: "invalid_invitation")
        }
        guard let user = try accounts.acceptInvitation(token: token, passwordHash: try PasswordHasher.hash(password)) else {
            throw APIError.badRequest("This invitation is invalid, expired or already used", code: "invalid_invitation")
        }
        AuditLog(services.metadata).record(account: user.accountId, actor: "user:\(user.id)", action: "invitation_accepted", requestId: request.requestId)
        return .json(["ok": true, "user": user.json()], status: 201)
    }

    // MARK: OAuth2

    func oauthToken(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try services.parameters(request)
        guard p.string("grant_type") == "client_credentials" else {
            throw APIError(400, "unsupported_grant_type", "Only grant_type=client_credentials is supported")
        }
        var clientId = p.string("client_id"), secret = p.string("client_secret")
        if clientId == nil, let basic = request.header("authorization"), basic.lowercased().hasPrefix("basic "),
           let decoded = Data(base64Encoded: String(basic.dropFirst(6))).flatMap({ String(data: $0, encoding: .utf8) }) {
            let pair = decoded.split(separator: ":", maxSplits: 1)
            if pair.count == 2 { clientId = try FormDecoding.percentDecode(pair[0]); secret = try FormDecoding.percentDecode(pair[1]) }
        }
        guard let clientId, let secret, let owner = try OAuthClientStore(services.metadata).verify(clientId: clientId, secret: secret) else {
            throw APIError(401, "invalid_client", "Invalid client credentials")
        }
        if let audience = p.string("audience"), audience != JWT.audience {
            throw APIError(400, "invalid_request", "Unknown audience")
        }
        let now = Int(Date().timeIntervalSince1970), ttl = services.config.oauthTokenTTL
        let token = services.auth.jwt.sign([
            "iss": .string(services.config.publicURL + "/"), "sub": .string(owner.userId), "aud": .string(JWT.audience),
            "azp": .string(clientId), "iat": .int(now), "exp": .int(now + ttl), "scope": "read:tokens write:tokens read:connections write:connections read:imports write:imports",
            "\(JWT.namespace)/account_id": .string(owner.account), "\(JWT.namespace)/acting_as": .string(owner.userId),
        ])
        return .json(["access_token": .string(token), "token_type": "Bearer", "expires_in": .int(ttl),
                      "scope": "read:tokens write:tokens read:connections write:connections read:imports write:imports"],
                     headers: [("Cache-Control", "no-store")])
    }

    func listClients(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireUser()
        return .json(["results": .array(try OAuthClientStore(services.metadata).list(account: principal.accountId))])
    }

    func createClient(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let name = try services.parameters(request).string("name") ?? ""
        let created = try OAuthClientStore(services.metadata).create(account: principal.accountId, userId: userId, name: String(name.prefix(200)))
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(userId)", action: "oauth_client_created",
                                           target: created.clientId, requestId: request.requestId)
        return .json(["client_id": .string(created.clientId), "client_secret": .string(created.secret), "name": .string(name)], status: 201)
    }

    func deleteClient(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let clientId = request.pathParameters["clientId"]!
        let store = OAuthClientStore(services.metadata)
        guard let owner = try store.owner(account: principal.accountId, clientId: clientId) else {
            throw APIError.notFound("OAuth client not found")
        }
        try principal.authorize(oauthClient: owner, account: principal.accountId)
        guard try store.delete(account: principal.accountId, clientId: clientId) else {
            throw APIError.notFound("OAuth client not found")
        }
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(userId)", action: "oauth_client_deleted",
                                           target: clientId, requestId: request.requestId)
        return .noContent()
    }

    func account(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireUser()
        return .json(["id": .string(principal.accountId), "name": .optional(try accounts.accountName(principal.accountId)),
                      "signup": .string(services.config.signup.rawValue)])
    }

    func renameAccount(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireRole(.admin)
        let name = try services.parameters(request).required("name")
        guard name.count <= 200 else { throw APIError.badRequest("Name is too long") }
        try accounts.renameAccount(principal.accountId, name: name)
        return .json(["id": .string(principal.accountId), "name": .string(name)])
    }
}
