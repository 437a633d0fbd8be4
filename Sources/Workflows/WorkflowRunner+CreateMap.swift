import HTTPKit
import Postgres
import SQLKit

extension WorkflowRunner {
    /// create_map: the result is published (build, then swap, like save_table) as `map_<node>` in the
    /// workflow's schema — a name that does not change between runs — and one Builder map owned by the
    /// workflow's owner shows it. The map is made once per node: later runs (and a resumed run) find it in
    /// the run history and only refresh the table, so a scheduled workflow does not fill the maps list.
    func createMap(_ node: WorkflowDocument.Node, from source: SQL, columns: [NodeInput.Column], schema: Identifier, runId: String,
                   run: RunRow, account: String, watch: PGConnection.Watch,
                   on db: PGConnection) throws -> (table: String, tableName: String, map: String) {
        guard let maps else { throw WorkflowError.invalid("this worker cannot make Builder maps", node: node.id, parameter: "type") }
        guard let geo = columns.first(where: \.isGeometry) else {
            throw WorkflowError.invalid("a map needs a geometry column in its input", node: node.id, parameter: "in")
        }
        let title = try Compiler(node: node, inputs: [:], variables: run.variables).requiredString("title")
        let tableName = "map_" + String(node.id.lowercased().prefix(50))
        let target = QualifiedName(schema: schema.name, table: tableName)
        let published = try save(node, from: source, runId: runId, run: run, account: account, variables: run.variables, watch: watch,
                                 into: target, on: db)
        let (owner, existing): (String?, String?) = try services.metadata.withConnection { meta in
            let r = try meta.execute("""
                SELECT w.owner_id, (SELECT nodes->$2->>'mapId' FROM workflow_runs WHERE workflow_id = w.id AND nodes->$2->>'mapId' IS NOT NULL
                                    ORDER BY id DESC LIMIT 1)
                FROM workflows w WHERE w.id = $1
                """, [run.workflow, node.id])
            return (r.string(0, 0), r.string(0, 1))
        }
        guard let owner else { throw WorkflowError.invalid("the workflow has no owner to own its map", node: node.id, parameter: "title") }
        let map = try maps.map(account: account, owner: owner, title: title, connection: run.connection, table: published,
                               geoColumn: geo.name, existing: existing)
        setNode(runId, node.id, ["status": "running", "mapId": .string(map)])
        return (published, tableName, map)
    }
}
