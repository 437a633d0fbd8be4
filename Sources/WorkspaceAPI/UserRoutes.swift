import HTTPKit
import Platform

/// Users, roles and invitations of an organisation; admins only, enforced here on the server.
struct UserRoutes {
    let services: Services
    var accounts: AccountStore { AccountStore(services.metadata) }

    func register(_ r: Router) {
        r.get("/api/v3/users", list)
        r.patch("/api/v3/users/{id}", update)
        r.delete("/api/v3/users/{id}", delete)
        r.get("/api/v3/invitations", listInvitations)
        r.post("/api/v3/invitations", invite)
        r.delete("/api/v3/invitations/{id}", revoke)
    }

    func role(_ p: Parameters) throws -> Principal.Role {
        guard let role = Principal.Role(rawValue: p.string("role") ?? "") else {
            throw APIError.badRequest("role must be admin, editor or viewer", code: "invalid_role")
        }
        return role
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireRole(.admin)
        return .json(["results": .array(try accounts.users(account: principal.accountId).map { $0.json() })])
    }

    func update(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let adminId = try principal.requireRole(.admin)
        let newRole = try role(try services.parameters(request))
        guard let user = try accounts.setRole(userId: request.pathParameters["id"]!, account: principal.accountId, role: newRole) else {
            throw APIError.notFound("User not found")
        }
        // The new role applies to the user's sessions, OAuth and API tokens at once (they read it per request).
        services.auth.forgetUser(id: user.id, clientIds: (try? services.auth.oauthClientIds(of: user.id)) ?? [])
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(adminId)", action: "role_changed",
                                           target: user.id, requestId: request.requestId)
        return .json(user.json())
    }

    func delete(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let adminId = try principal.requireRole(.admin)
        let id = request.pathParameters["id"]!
        let clients = (try? services.auth.oauthClientIds(of: id)) ?? []  // read before removal deletes them
        guard try accounts.userById(id, account: principal.accountId) != nil,
              try accounts.deleteUser(userId: id, account: principal.accountId, transferTo: adminId) else { throw APIError.notFound("User not found") }
        services.auth.forgetUser(id: id, clientIds: clients)
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(adminId)", action: "user_deleted",
                                           target: id, requestId: request.requestId)
        return .noContent()
    }

    func listInvitations(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireRole(.admin)
        return .json(["results": .array(try accounts.invitations(account: principal.accountId))])
    }

    /// Returns the invitation link once; without SMTP an admin passes it on.
    func invite(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let adminId = try principal.requireRole(.admin)
        let p = try services.parameters(request)
        let email = try p.required("email")
        guard AccountStore.isPlausibleEmail(email) else { throw APIError.badRequest("Enter a valid email address", code: "invalid_email") }
        let invitation = try accounts.invite(account: principal.accountId, email: email, role: try role(p), invitedBy: adminId)
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(adminId)", action: "user_invited",
                                           target: invitation.id, requestId: request.requestId)
        let link = "\(services.config.publicURL)/acc/#/accept?token=\(invitation.token)"
        return .json(["id": .string(invitation.id), "email": .string(email), "token": .string(invitation.token), "link": .string(link)], status: 201)
    }

    func revoke(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireRole(.admin)
        guard try accounts.revokeInvitation(id: request.pathParameters["id"]!, account: principal.accountId) else {
            throw APIError.notFound("Invitation not found")
        }
        return .noContent()
    }
}
