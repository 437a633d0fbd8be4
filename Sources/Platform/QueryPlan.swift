import HTTPKit
import Postgres

/// What PostgreSQL's planner says about a statement, without running it (EXPLAIN, no ANALYZE).
public struct QueryPlan: Sendable {
    public let root: JSON

    public init(root: JSON) { self.root = root }

    public static func explain(_ sql: String, _ parameters: [String?], connection: PGConnection,
                               watch: PGConnection.Watch = .none, verbose: Bool = false) throws -> QueryPlan {
        let r = try connection.execute("EXPLAIN (\(verbose ? "VERBOSE, " : "")FORMAT JSON) " + sql, parameters, watch: watch)
        guard let text = r.string(0, 0), let json = try? JSON.decode(text) else {
            throw APIError.internalError("Could not read the query plan")
        }
        return QueryPlan(root: json)
    }

    /// Every (schema, table) the plan scans.
    public var relations: [(schema: String, table: String)] {
        var found: [(String, String)] = []
        walk(root) { o in
            if let name = o["Relation Name"]?.stringValue { found.append((o["Schema"]?.stringValue ?? "public", name)) }
        }
        return found
    }

    /// Node types present in the plan.
    public var nodeTypes: Set<String> {
        var types = Set<String>()
        walk(root) { o in if let t = o["Node Type"]?.stringValue { types.insert(t) } }
        return types
    }

    /// The planner's row estimate for the whole statement.
    public var estimatedRows: Int {
        root.arrayValue?.first?["Plan"]?["Plan Rows"]?.intValue ?? 0
    }

    func walk(_ node: JSON, _ visit: ([String: JSON]) -> Void) {
        switch node {
        case .array(let items): for item in items { walk(item, visit) }
        case .object(let o):
            visit(o)
            for (_, value) in o { walk(value, visit) }
        default: break
        }
    }
}
