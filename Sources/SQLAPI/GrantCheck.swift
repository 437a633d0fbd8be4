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
        // A scoped token must not learn whether an ungranted table, role or function exists: catalog
        // lookups by name (`'t'::regclass`, `'r'::regrole`) are refused outright, and a planning error
        // about a missing or forbidden object reads the same as any refusal.
        if PlanFunctions.namesCatalogObject(sql) { throw denied("Scoped tokens cannot look up catalog objects by name") }
        let plan: QueryPlan
        do {
            plan = try QueryPlan.explain(sql, parameters, connection: connection, watch: watch, verbose: true)
        } catch let e as PGError where e.sqlstate.map(existenceStates.contains) == true {
            throw denied()
        }
        if !plan.nodeTypes.isDisjoint(with: refusedNodes) { throw denied("Scoped tokens cannot call set-returning functions") }
        var calls = Set<String>()
        expressions(plan.root) { calls.formUnion(PlanFunctions.functionNames(in: $0)) }
        if let call = calls.sorted().first(where: { !PlanFunctions.isAllowed($0) }) {
            throw denied("Scoped tokens cannot call \(call)()")
        }
        // Not naming the relation: the refusal of an existing table must read like that of a missing one.
        for (schema, table) in plan.relations where !grants.contains(where: { $0.allowsTable(schema: schema, table: table) }) {
            throw denied()
        }
        return .tablesOnly
    }

    static func denied(_ message: String = "The token's grants do not include this query") -> APIError {
        APIError.forbidden(message, code: "source_not_granted")
    }

    /// Errors whose text would tell a scoped token that an object does or does not exist (undefined
    /// table, column, object, schema, function, database; insufficient privilege). A missing column of
    /// an ungranted table would otherwise prove the table exists.
    static let existenceStates: Set<String> = ["42P01", "42703", "42704", "3F000", "42883", "3D000", "42501"]

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
