import HTTPKit
import Platform
import Postgres

/// Decides whether an API Access Token's grants cover a SQL statement. A granted SQL source runs verbatim;
/// otherwise the planner's own list of relations (EXPLAIN, which does not execute) must name only granted
/// tables, set-returning function scans are refused and every called function must be on an allow-list. The statement then runs in a READ ONLY
/// transaction that is rolled back, so grants never allow writes or leave session state behind.
enum GrantCheck {
    enum Verdict: Equatable { case verbatim, tablesOnly }

    static func authorize(_ sql: String, parameters: [String?], grants: [Grant], connection: PGConnection,
                          watch: PGConnection.Watch) throws -> Verdict {
        if grants.contains(where: { $0.allowsQuery(sql) }) { return .verbatim }
        guard grants.contains(where: { !$0.isQuery }) else { throw denied() }
        let plan = try connection.execute("EXPLAIN (VERBOSE, FORMAT JSON) " + sql, parameters, watch: watch)
        guard let text = plan.string(0, 0), let json = try? JSON.decode(text) else { throw denied() }
        var relations: [(String, String)] = []
        var refused = false
        collect(json, into: &relations, refused: &refused)
        if refused { throw denied("Scoped tokens cannot call set-returning functions") }
        var calls = Set<String>()
        expressions(json) { calls.formUnion(PlanFunctions.functionNames(in: $0)) }
        if let call = calls.sorted().first(where: { !PlanFunctions.isAllowed($0) }) {
            throw denied("Scoped tokens cannot call \(call)()")
        }
        for (schema, table) in relations where !grants.contains(where: { $0.allowsTable(schema: schema, table: table) }) {
            throw denied("The token has no grant for \(schema).\(table)")
        }
        return .tablesOnly
    }

    static func denied(_ message: String = "The token's grants do not include this query") -> APIError {
        APIError.forbidden(message, code: "source_not_granted")
    }

    static let refusedNodes: Set<String> = ["Function Scan", "Table Function Scan", "Foreign Scan", "Custom Scan"]

    /// Every expression string in a plan (outputs, filters, conditions, sort keys…).
    static func expressions(_ node: JSON, _ visit: (String) -> Void) {
        switch node {
        case .array(let items): for item in items { expressions(item, visit) }
        case .object(let o):
            for (key, value) in o where !PlanFunctions.nameKeys.contains(key) {
                switch value {
                case .string(let s): visit(s)
                default: expressions(value, visit)
                }
            }
        case .string(let s): visit(s)
        default: break
        }
    }

    static func collect(_ node: JSON, into relations: inout [(String, String)], refused: inout Bool) {
        switch node {
        case .array(let items):
            for item in items { collect(item, into: &relations, refused: &refused) }
        case .object(let o):
            if let type = o["Node Type"]?.stringValue, refusedNodes.contains(type) { refused = true }
            if let name = o["Relation Name"]?.stringValue {
                relations.append((o["Schema"]?.stringValue ?? "public", name))
            }
            for (_, value) in o { collect(value, into: &relations, refused: &refused) }
        default:
            break
        }
    }
}
