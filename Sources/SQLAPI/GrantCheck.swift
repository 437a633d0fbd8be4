import HTTPKit
import Platform
import Postgres
import SQLKit

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
        let plan = try QueryPlan.explain(sql, parameters, connection: connection, watch: watch, verbose: true)
        if !plan.nodeTypes.isDisjoint(with: refusedNodes) { throw denied("Scoped tokens cannot call set-returning functions") }
        var calls = Set<String>()
        expressions(plan.root) { calls.formUnion(PlanFunctions.functionNames(in: $0)) }
        if let call = calls.sorted().first(where: { !PlanFunctions.isAllowed($0) }) {
            throw denied("Scoped tokens cannot call \(call)()")
        }
        for (schema, table) in plan.relations where !grants.contains(where: { $0.allowsTable(schema: schema, table: table) }) {
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
}
