import HTTPKit
import Platform

/// `/api/v3/workspace/maps`: the organisation's Builder maps. Who reads and writes which map is decided by
/// `Principal.authorize(map:)` (private: owner and admins; organization: every member; public: anyone).
struct MapRoutes {
    let services: Services
    var store: MapStore { MapStore(pool: services.metadata) }

    func register(_ r: Router) {
        r.get("/api/v3/workspace/maps", list)
        r.post("/api/v3/workspace/maps", create)
        r.get("/api/v3/workspace/maps/{id}", show)
        r.patch("/api/v3/workspace/maps/{id}", update)
        r.delete("/api/v3/workspace/maps/{id}", delete)
        r.post("/api/v3/workspace/maps/{id}/duplicate", duplicate)
        r.post("/api/v3/workspace/maps/{id}/publish", publish)
    }

    static let noStore: [(String, String)] = [("Cache-Control", "no-store")]

    func find(_ request: HTTPRequest, _ principal: Principal, _ action: Principal.MapAction) throws -> MapRecord {
        guard let map = try store.find(id: request.pathParameters["id"]!, account: principal.accountId) else {
            throw APIError.notFound("Map not found", code: "map_not_found")
        }
        try principal.authorize(map: map.accountId, owner: map.ownerId, privacy: map.privacyLevel, action)
        return map
    }

    func text(_ p: Parameters, _ name: String, max: Int, required: Bool) throws -> String? {
        guard p.has(name) else {
            if required { throw MapDocument.invalid("\(name) is required") }
            return nil
        }
        guard let value = p.body[name]?.stringValue ?? p.query[name] else { throw MapDocument.invalid("\(name) must be a string") }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if required && trimmed.isEmpty { throw MapDocument.invalid("\(name) must not be empty") }
        guard trimmed.count <= max else { throw MapDocument.invalid("\(name) is longer than \(max) characters") }
        return trimmed
    }

    func datasets(_ p: Parameters, account: String) throws -> JSON? {
        guard let value = try p.json("datasets") else { return nil }
        let names = Set(try ConnectionStore(services.metadata).list(account: account).map(\.name))
        return try MapDocument.validateDatasets(value, connections: names)
    }

    func privacy(_ p: Parameters) throws -> String? {
        guard let privacy = try text(p, "privacy", max: 20, required: false) else { return nil }
        guard Principal.MapPrivacy(rawValue: privacy) != nil else {
            throw MapDocument.invalid("privacy must be private, organization or public")
        }
        return privacy
    }

    func refuseWildcardPublic(_ datasets: JSON) throws {
        if (datasets.arrayValue ?? []).contains(where: { $0["source"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) == "*" }) {
            throw MapDocument.invalid("A map with a * dataset cannot be public: name the tables or queries it shows")
        }
    }

    func config(_ p: Parameters) throws -> JSON? {
        try p.json("keplerMapConfig").map(MapDocument.validateConfig)
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireUser()
        let visible = try store.list(account: principal.accountId).filter {
            (try? principal.authorize(map: $0.accountId, owner: $0.ownerId, privacy: $0.privacyLevel, .read)) != nil
        }
        return .json(["data": .array(visible.map { $0.summary() })], headers: Self.noStore)
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireUser()
        return .json(try find(request, principal, .read).full(), headers: Self.noStore)
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let p = try services.parameters(request)
        let title = try text(p, "title", max: 200, required: true)!
        let description = try text(p, "description", max: 5000, required: false) ?? ""
        let privacy = try self.privacy(p) ?? Principal.MapPrivacy.private.rawValue
        let datasets = try datasets(p, account: principal.accountId) ?? .array([])
        if privacy == "public" { try refuseWildcardPublic(datasets) }
        let map = try store.create(account: principal.accountId, owner: userId, title: title, description: description,
                                   privacy: privacy, config: try config(p) ?? MapDocument.defaultConfig, datasets: datasets)
        audit(request, principal, userId, "map_created", map.id)
        return .json(map.full(), status: 201, headers: Self.noStore)
    }

    func update(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let map = try find(request, principal, .write)
        let p = try services.parameters(request)
        var changes = MapStore.Changes()
        changes.title = try text(p, "title", max: 200, required: p.has("title"))
        changes.description = try text(p, "description", max: 5000, required: false)
        changes.privacy = try privacy(p)
        changes.config = try config(p)
        changes.datasets = try datasets(p, account: principal.accountId)
        // Maps from before `*` datasets were refused (migration 011) stay non-public until their datasets change.
        if (changes.privacy ?? map.privacy) == "public" { try refuseWildcardPublic(changes.datasets ?? map.datasets ?? .array([])) }
        let newPassword = try password(p)
        var (updated, replaced) = try store.update(map, changes)
        if let replaced { services.auth.forgetToken(id: replaced) }
        if let newPassword {
            try store.setPassword(map, hash: try newPassword.map { try PasswordHasher.hash($0) })
            updated = try store.find(id: map.id, account: map.accountId)!
            audit(request, principal, userId, newPassword == nil ? "map_password_removed" : "map_password_set", map.id)
        }
        audit(request, principal, userId, "map_updated", map.id)
        return .json(updated.full(), headers: Self.noStore)
    }

    func delete(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let map = try find(request, principal, .write)
        guard try store.delete(map, actor: userId) else { throw APIError.notFound("Map not found", code: "map_not_found") }
        if let token = map.tokenId { services.auth.forgetToken(id: token) }
        audit(request, principal, userId, "map_deleted", map.id)
        return .noContent()
    }

    /// `password`: absent = unchanged (nil), null or "" = remove (.some(nil)), a string = set.
    func password(_ p: Parameters) throws -> String?? {
        guard p.has("password") else { return nil }
        if p.body["password"] == .null { return .some(nil) }
        guard let value = p.body["password"]?.stringValue ?? p.query["password"] else { throw MapDocument.invalid("password must be a string or null") }
        if value.isEmpty { return .some(nil) }
        guard (Self.minPasswordLength...PasswordHasher.maximumLength).contains(value.count) else {
            throw APIError.badRequest("A map password has \(Self.minPasswordLength) to \(PasswordHasher.maximumLength) characters",
                                      code: "weak_password")
        }
        return .some(value)
    }

    /// Shared with viewers by word of mouth, so shorter than an account password; guessing is throttled.
    static let minPasswordLength = 8

    /// Copies the draft to the published version after checking that its sources still read.
    func publish(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let map = try find(request, principal, .write)
        let datasets = map.datasets ?? .array([])
        if map.isPublic { try refuseWildcardPublic(datasets) }
        try MapSourceCheck(services: services).check(datasets, principal: principal, request: request)
        guard let (published, replaced) = try store.publish(map) else {
            throw APIError.conflict("The map changed while it was being published; publish again", code: "map_changed")
        }
        if let replaced { services.auth.forgetToken(id: replaced) }
        audit(request, principal, userId, "map_published", map.id)
        return .json(published.full(), headers: Self.noStore)
    }

    /// A private copy owned by the caller, with its own token.
    func duplicate(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let map = try find(request, principal, .read)
        let copy = try store.create(account: principal.accountId, owner: userId, title: String("Copy of \(map.title)".prefix(200)),
                                    description: map.description, config: map.config ?? MapDocument.defaultConfig,
                                    datasets: map.datasets ?? .array([]))
        audit(request, principal, userId, "map_duplicated", copy.id)
        return .json(copy.full(), status: 201, headers: Self.noStore)
    }

    func audit(_ request: HTTPRequest, _ principal: Principal, _ userId: String, _ action: String, _ target: String) {
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(userId)", action: action,
                                           target: target, requestId: request.requestId)
    }
}
