import Foundation
import HTTPKit
import Postgres
import SQLKit

/// Who is calling. API Access Tokens carry grants; users (session or OAuth) act with their role.
public struct Principal: Sendable {
    public enum Role: String, Sendable { case admin, editor, viewer }

    public enum Kind: Sendable {
        /// A signed-in user (session cookie) or an OAuth access token acting as a user.
        case user(role: Role, viaSession: Bool)
        /// An API Access Token: limited to its grants, APIs and referers.
        case apiToken(id: String, grants: [Grant])
    }

    public let accountId: String
    /// The acting user (for API tokens: the creator, when known).
    public let userId: String?
    public let kind: Kind

    /// When the credential stops being valid (token expiry, JWT exp, session end), if it does.
    public var expiresAt: Date?
    /// For API tokens: the creator's current role (nil when unknown, which reads only); a token never
    /// does more than the person who made it may do now.
    public var creatorRole: Role?
    /// For a map's own token: the map it belongs to. Such tokens only ever read.
    public var mapId: String?

    public init(accountId: String, userId: String?, kind: Kind, expiresAt: Date? = nil,
                creatorRole: Role? = nil, mapId: String? = nil) {
        self.accountId = accountId
        self.userId = userId
        self.kind = kind
        self.expiresAt = expiresAt
        self.creatorRole = creatorRole
        self.mapId = mapId
    }

    /// Whether everything this principal runs must be read-only: viewers, a map's token, a token whose
    /// creator is (now) a viewer or unknown, and scoped tokens (no `*` grant). The session policy of the
    /// warehouse pool and every write route read this one property.
    public var isReadOnly: Bool {
        if actsAsViewer { return true }
        if case .apiToken(_, let grants) = kind { return !grants.contains(where: \.isWildcardAll) }
        return false
    }

    /// The same for statements on one connection: a token with `*` on another connection only reads here.
    public func isReadOnly(on connection: String) -> Bool {
        if actsAsViewer { return true }
        if case .everything = access(to: connection) { return false }
        return true
    }

    /// Whether the role behind this principal reads only, whatever its grants: a viewer, a map's token, a
    /// token whose creator is a viewer (or unknown). Table grants may still let other tokens import.
    public var actsAsViewer: Bool {
        switch kind {
        case .user(let role, _): return role == .viewer
        case .apiToken: return mapId != nil || creatorRole == nil || creatorRole == .viewer
        }
    }

    public var isMapToken: Bool { mapId != nil }

    /// The key under which the http-cache files this credential's responses, so revoking the credential
    /// can purge them: `token:<id>` for API Access Tokens, `user:<id>` for a user's sessions and OAuth tokens.
    public var credentialKey: String {
        switch kind {
        case .apiToken(let id, _): return "token:\(id)"
        case .user: return "user:\(userId ?? accountId)"
        }
    }

    public var isUser: Bool { if case .user = kind { return true }; return false }
    public var viaSession: Bool { if case .user(_, let s) = kind { return s }; return false }
    public var role: Role? { if case .user(let r, _) = kind { return r }; return nil }

    /// The Tokens, Connections and account APIs take users only (CARTO: "OAuth token required").
    public func requireUser() throws -> (userId: String, role: Role) {
        guard case .user(let role, _) = kind, let userId else {
            throw APIError.forbidden("This API requires a user or OAuth access token, not an API access token", code: "user_token_required")
        }
        return (userId, role)
    }

    public func requireRole(_ allowed: Role...) throws -> String {
        let (userId, role) = try requireUser()
        guard allowed.contains(role) else { throw APIError.forbidden("Your role (\(role.rawValue)) cannot do this", code: "role_forbidden") }
        return userId
    }

    /// How this principal may use a connection's data.
    public func access(to connectionName: String) -> Access {
        switch kind {
        case .user: return .everything
        case .apiToken(_, let grants):
            let mine = grants.filter { $0.connectionName == connectionName }
            if mine.isEmpty { return .none }
            if mine.contains(where: { $0.isWildcardAll }) { return .everything }
            return .granted(mine)
        }
    }

    /// The one decision of how this principal's warehouse statements run (the pool applies it at checkout):
    /// viewers, scoped tokens (a public map's token is one) and any cookie-authenticated GET (a cross-site
    /// link can trigger it) read only, in a transaction that is rolled back.
    public func sessionMode(connection name: String, method: String) -> PGSessionMode {
        if isReadOnly(on: name) { return .readOnly }
        if viaSession, ["GET", "HEAD"].contains(method) { return .readOnly }
        return .readWrite
    }

    public enum Access: Sendable {
        case none
        case everything
        case granted([Grant])
    }
}

/// One `{connection_name, source}` grant of an API Access Token.
public struct Grant: Sendable, Equatable {
    public let connectionName: String
    public let source: String

    public init(connectionName: String, source: String) {
        self.connectionName = connectionName
        self.source = source.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public var isWildcardAll: Bool { source == "*" }
    /// A grant whose source is SQL rather than a table name: it starts with a query keyword or a parenthesis.
    public var isQuery: Bool {
        let head = source.drop { $0 == "(" || $0.isWhitespace }
        if head.count < source.count, source.first == "(" { return true }
        let word = head.prefix { $0.isLetter }.lowercased()
        return ["select", "with", "values", "table"].contains(word) && head.dropFirst(word.count).first.map { $0.isWhitespace || $0 == "(" } ?? false
    }

    /// SQL compared verbatim: only leading/trailing whitespace and trailing semicolons are ignored.
    /// Whitespace inside is significant: collapsing it turned a `-- comment` line of a grant into a
    /// comment that swallows the rest of a one-line query (issue 11, case 6).
    public static func normalizeSQL(_ sql: String) -> String {
        var s = Substring(sql)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace || c == ";" { s.removeLast() }
        return String(s)
    }

    public func allowsQuery(_ sql: String) -> Bool {
        isQuery && Grant.normalizeSQL(source) == Grant.normalizeSQL(sql)
    }

    /// Whether a table (schema, name) is covered: exact `schema.table`, `table` for `public`, or `schema.*`.
    /// A leading database qualifier (`db.schema.table`) is accepted and ignored.
    public func allowsTable(schema: String, table: String) -> Bool {
        guard !isQuery, let granted = try? QualifiedName(parsing: source) else { return false }
        guard let grantedSchema = granted.schema else { return schema == "public" && granted.table == table }
        return grantedSchema == schema && (granted.table == table || granted.table == "*")
    }
}
