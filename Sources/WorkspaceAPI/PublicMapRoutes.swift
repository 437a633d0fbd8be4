import HTTPKit
import Platform

/// `GET /api/v3/maps/public/{id}`: a map the way fetchMap reads it (contract §6, §14(c)), with the map's
/// own API access token (grants = its datasets' sources). Public maps are anonymous; a private map is
/// shown only to whom `Principal.authorize(map:)` allows, and is "not found" to everyone else.
struct PublicMapRoutes {
    let services: Services
    var store: MapStore { MapStore(pool: services.metadata) }
    /// Short, so that a map made private again stops being served from browser caches soon.
    static let publicMaxAge = 30

    func register(_ r: Router) {
        r.get("/api/v3/maps/public/{id}", show)
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let notFound = APIError.notFound("Map not found", code: "map_not_found")
        guard let map = try store.find(id: request.pathParameters["id"]!, account: nil) else { throw notFound }
        if !map.isPublic {
            // Bad or foreign credentials are indistinguishable from none: the map's existence is not revealed.
            guard let principal = try? services.auth.authenticate(request, api: "maps"),
                  (try? principal.authorize(map: map.accountId, owner: map.ownerId, privacy: map.privacyLevel, .read)) != nil else {
                throw notFound
            }
        }
        let tokenId = try store.ensureToken(map)
        let body: JSON = [
            "id": .string(map.id), "title": .string(map.title), "description": .string(map.description),
            "privacy": .string(map.privacy), "createdAt": .string(map.createdAt), "updatedAt": .string(map.updatedAt),
            "token": .string(services.auth.apiTokenString(account: map.accountId, id: tokenId)),
            "keplerMapConfig": map.config ?? MapDocument.defaultConfig, "datasets": map.datasets ?? .array([]),
        ]
        let cache = map.isPublic ? "public, max-age=\(Self.publicMaxAge)" : "private, no-store"
        return .json(body, headers: [("Cache-Control", cache)])
    }
}
