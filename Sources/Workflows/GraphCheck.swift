import HTTPKit
import Postgres
import SQLKit

/// Checks a whole workflow against the warehouse before anything runs: every node is compiled over its
/// inputs' real columns (found by describing the chain of nodes before it as CTEs, `LIMIT 0`, in the
/// caller's own session), so unknown columns, type mismatches and expressions the database rejects are
/// 400s naming the node and parameter, and nothing is written.
public enum GraphCheck {
    /// The compiled SQL of every node, in run order (also what "export as SQL" shows).
    public static func check(_ document: WorkflowDocument, variables: [String: JSON], on db: PGConnection) throws -> [(WorkflowDocument.Node, SQL)] {
        var columns: [String: [NodeInput.Column]] = [:]
        var ctes: [SQL] = []
        var out: [(WorkflowDocument.Node, SQL)] = []
        // Nodes reading an import_url node (directly or not) are compiled when the run has loaded the file:
        // before that its columns are unknown. Their mistakes are then node failures naming the parameter.
        var deferred: Set<String> = []
        for node in try document.order() {
            if node.type == "import_url" || document.inputs(of: node.id).values.contains(where: deferred.contains) {
                let sql = node.type == "import_url" ? try Compiler(node: node, inputs: [:], variables: variables).compile()
                    : "SELECT NULL -- compiled when the run has loaded the URL it reads"
                deferred.insert(node.id)
                out.append((node, sql))
                continue
            }
            let inputs = try document.inputs(of: node.id).mapValues { source in
                NodeInput(relation: "\(try cteName(source))", columns: columns[source] ?? [])
            }
            let sql = try Compiler(node: node, inputs: inputs, variables: variables).compile()
            let cte: SQL = "\(try cteName(node.id)) AS (\(sql))"
            let probe: SQL = "WITH \(ctes + [cte], joinedBy: ",\n") SELECT * FROM \(try cteName(node.id)) LIMIT 0"
            do {
                let r = try db.execute(probe)
                columns[node.id] = try describe(r, on: db)
            } catch let e as PGError where e.sqlstate != nil && !e.connectionLost {
                throw WorkflowError.invalid(e.message, node: node.id, parameter: blamedParameter(node))
            }
            ctes.append(cte)
            out.append((node, sql))
        }
        return out
    }

    static func cteName(_ node: String) throws -> Identifier { try Identifier("wf_" + node) }

    /// Column names and types of a result (types by `format_type`, one catalogue query per result).
    public static func describe(_ r: PGResult, on db: PGConnection) throws -> [NodeInput.Column] {
        let oids = (0..<r.columnCount).map { String(r.columnType($0)) }
        let t = try db.execute("SELECT oid::text, format_type(oid, NULL) FROM pg_type WHERE oid = ANY($1::oid[])",
                               ["{" + oids.joined(separator: ",") + "}"])
        let names = Dictionary((0..<t.rowCount).map { (t.string($0, 0)!, t.string($0, 1)!) }, uniquingKeysWith: { a, _ in a })
        return (0..<r.columnCount).map { NodeInput.Column(name: r.columnName($0), type: names[oids[$0]] ?? "unknown") }
    }

    /// The parameter most likely at fault when the database refuses a node: its user-written SQL if any.
    static func blamedParameter(_ node: WorkflowDocument.Node) -> String? {
        for kind in [Component.Kind.expression, .sql, .table] {
            if let p = node.component.params.first(where: { $0.kind == kind && node.params[$0.name] != nil }) { return p.name }
        }
        return node.component.params.first { node.params[$0.name] != nil }?.name
    }

    /// The whole workflow as one script a user can read or run by hand ("export as SQL").
    public static func script(_ compiled: [(WorkflowDocument.Node, SQL)]) -> String {
        compiled.map { node, sql in
            let text = sql.parameters.isEmpty ? sql.text : sql.text + "\n-- parameters: " + JSON.array(sql.parameters.map(JSON.optional)).text
            return "-- \(node.id) (\(node.type))\n\(text);"
        }.joined(separator: "\n\n")
    }
}
