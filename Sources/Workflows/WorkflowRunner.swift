import CryptoSupport
import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

/// Runs a workflow run job in the sql-worker. Each node is materialised in the workflow's warehouse schema
/// as a table named after the hash of its compiled SQL (which names its inputs' tables, themselves named by
/// their hashes) — so an unchanged node finds its table and is reused, and a run retried after the worker
/// was killed resumes at the first node without a table. Each table is created by one CREATE TABLE AS in
/// its own transaction: a killed statement leaves nothing behind. Outputs are built under a temporary name
/// and swapped in one transaction, together with a marker that makes a retried run skip them.
public struct WorkflowRunner: Sendable {
    let services: Services
    let maps: (any WorkflowMapMaker)?
    let locations: (any WorkflowLocationServices)?
    let imports: (any WorkflowURLImporter)?
    /// `maps` makes create_map's Builder maps, `locations` answers geocode/isolines/route nodes; without
    /// them those nodes fail with a clear error.
    public init(services: Services, maps: (any WorkflowMapMaker)? = nil, locations: (any WorkflowLocationServices)? = nil,
                imports: (any WorkflowURLImporter)? = nil) {
        self.imports = imports
        self.services = services
        self.maps = maps
        self.locations = locations
    }

    static let outputMarkers = "carto.tessera_workflow_outputs"

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        switch job.kind {
        case WorkflowStore.dropKind: return try drop(job)
        default: return try execute(job, context)
        }
    }

    /// Drops a deleted workflow's schema (queued with the deletion).
    func drop(_ job: Job) throws -> JSON? {
        guard let account = job.accountId, let name = job.payload["connection"]?.stringValue,
              let schema = job.payload["schema"]?.stringValue, schema.hasPrefix("tessera_wf_") else {
            throw PermanentJobError("The job has no connection or schema")
        }
        let record: ConnectionRecord
        do { record = try services.warehouses.connection(account: account, name: name) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        try services.warehouses.privilegedPool(for: record).withConnection { db in
            _ = try db.execute("DROP SCHEMA IF EXISTS \(try Identifier(schema)) CASCADE")
        }
        return ["dropped": .string(schema)]
    }

    struct RunRow {
        let workflow: String
        let connection: String
        let status: String
        let document: WorkflowDocument
        let variables: [String: JSON]
    }

    func load(_ runId: String, on db: PGConnection) throws -> RunRow? {
        let r = try db.execute("""
            SELECT w.id, w.connection, r.status, r.document::text, r.variables::text FROM workflow_runs r
            JOIN workflows w ON w.id = r.workflow_id WHERE r.id = $1
            """, [runId])
        guard r.rowCount == 1, let doc = try? JSON.decode(r.string(0, 3)!) else { return nil }
        let document: WorkflowDocument
        do { document = try WorkflowDocument(nodes: doc["nodes"], edges: doc["edges"], variables: doc["variables"]) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        let variables = (try? JSON.decode(r.string(0, 4) ?? "{}"))?.objectValue ?? [:]
        return RunRow(workflow: r.string(0, 0)!, connection: r.string(0, 1)!, status: r.string(0, 2)!, document: document, variables: variables)
    }

    /// Progress is informative: a failed update must not fail the run, but it must not vanish either.
    func setNode(_ runId: String, _ node: String, _ state: JSON) {
        do {
            try services.metadata.withConnection { db in
                _ = try db.execute("UPDATE workflow_runs SET nodes = nodes || jsonb_build_object($2::text, $3::jsonb) WHERE id = $1",
                                   [runId, node, state.text])
            }
        } catch {
            Log.warning("workflow_progress_not_saved", [("run", runId), ("node", node), ("error", String(describing: error))])
        }
    }

    func finish(_ runId: String, status: String, error: String? = nil, outputs: [String: JSON]? = nil) throws {
        try services.metadata.withConnection { db in
            _ = try db.execute("""
                UPDATE workflow_runs SET status = $2, error = $3, outputs = coalesce($4::jsonb, outputs), finished_at = now()
                WHERE id = $1 AND status IN ('pending', 'running')
                """, [runId, status, error, outputs.map { JSON.object($0).text }])
        }
    }

    func execute(_ job: Job, _ context: JobContext) throws -> JSON? {
        guard let account = job.accountId, let runId = job.payload["run"]?.stringValue else {
            throw PermanentJobError("The job has no run")
        }
        guard let run = try services.metadata.withConnection({ try load(runId, on: $0) }) else {
            throw PermanentJobError("The workflow or its run no longer exists")
        }
        guard run.status == "pending" || run.status == "running" else { return ["status": .string(run.status)] }
        try services.metadata.withConnection { db in
            _ = try db.execute("UPDATE workflow_runs SET status = 'running', started_at = coalesce(started_at, now()) WHERE id = $1 AND status = 'pending'",
                               [runId])
        }
        let record: ConnectionRecord
        do { record = try services.warehouses.connection(account: account, name: run.connection) } catch let e as APIError {
            try finish(runId, status: "failure", error: e.message)
            throw PermanentJobError(e.message)
        }
        let pool = try services.warehouses.privilegedPool(for: record)
        let watch = PGConnection.Watch(isAborted: { context.isCancelled },
                                       deadline: Date().addingTimeInterval(Double(services.config.sqlJobTimeoutMs) / 1000))
        let schema = try Identifier(WorkflowStore.schema(for: run.workflow))
        var tables: [String: (name: Identifier, columns: [NodeInput.Column])] = [:]
        var outputs: [String: JSON] = [:]
        var published: Set<String> = []
        var current: WorkflowDocument.Node?
        do {
            try pool.withConnection { db in
                try db.executeScript("""
                    CREATE SCHEMA IF NOT EXISTS \(schema.quoted);
                    CREATE SCHEMA IF NOT EXISTS carto;
                    CREATE TABLE IF NOT EXISTS \(Self.outputMarkers) (run_id bigint, node text, finished_at timestamptz NOT NULL DEFAULT now(),
                                                                    PRIMARY KEY (run_id, node));
                    """)
                for node in try run.document.order() {
                    current = node
                    if context.isCancelled { return }
                    let inputs = run.document.inputs(of: node.id).mapValues { source in
                        NodeInput(relation: "\(schema).\(tables[source]!.name)", columns: tables[source]!.columns)
                    }
                    let compiler = Compiler(node: node, inputs: inputs, variables: run.variables)
                    let sql = try compiler.compile()
                    let started = Date()
                    let table = try Identifier(try tableName(node, sql, runId: runId, on: db))
                    let qualified: SQL = "\(schema).\(table)"
                    setNode(runId, node.id, ["status": "running"])
                    var reused = true
                    var rows = try existingRows(schema: schema, table: table, on: db)
                    if rows == nil, node.type == "import_url" {
                        reused = false
                        rows = try importURL(node, compiler: compiler, schema: schema, table: table, account: account, run: run,
                                             context: context, on: db)
                    }
                    if rows == nil {
                        reused = false
                        try db.execute("BEGIN")
                        do {
                            try db.execute("SELECT set_config('statement_timeout', $1, true)", [String(services.config.sqlJobTimeoutMs)])
                            let ctas: SQL = "CREATE TABLE \(qualified) AS \(sql)"
                            let created = try db.execute(ctas, watch: watch)
                            let count = created.affectedRows ?? 0
                            if ComponentCatalog.locationServices.contains(node.type) {
                                try fillLocation(compiler, table: qualified, account: account, isCancelled: { context.isCancelled }, on: db)
                            }
                            let note: JSON = ["rows": .int(count), "created": .number(Date().timeIntervalSince1970.rounded(.down))]
                            try db.execute("COMMENT ON TABLE \(qualified) IS \(unsafeRaw: Self.literal(note.text))")
                            try db.execute("COMMIT")
                            rows = count
                        } catch let e as PGError where e.sqlstate == "42P07" || e.sqlstate == "23505" {
                            // Another run of this workflow built the same node meanwhile (42P07, or 23505 when both created it at
                            // once and the catalogue's unique index decided): same SQL, same result.
                            _ = try? db.execute("ROLLBACK")
                            guard let built = try existingRows(schema: schema, table: table, on: db) else { throw e }
                            rows = built
                            reused = true
                        } catch {
                            if db.isHealthy { _ = try? db.execute("ROLLBACK") }
                            throw error
                        }
                    }
                    let columns = try GraphCheck.describe(try db.execute("SELECT * FROM \(qualified) LIMIT 0"), on: db)
                    tables[node.id] = (table, columns)
                    let tableText = "\(WorkflowStore.schema(for: run.workflow)).\(table.name)"
                    var state: [String: JSON] = ["status": "success", "rows": .int(rows ?? 0), "reused": .bool(reused),
                                                 "table": .string(tableText)]
                    if node.type == "save_table" {
                        outputs[node.id] = .string(try save(node, from: qualified, runId: runId, run: run, account: account,
                                                            variables: run.variables, watch: watch, on: db))
                    } else if node.type == "create_map" {
                        let made = try createMap(node, from: qualified, columns: columns, schema: schema, runId: runId, run: run,
                                                 account: account, watch: watch, on: db)
                        outputs[node.id] = .string(made.table)
                        state["mapId"] = .string(made.map)
                        published.insert(made.tableName)
                    } else if node.type == "http_request" {
                        state["httpStatus"] = .int(try postSummary(node, rows: rows ?? 0, columns: columns, table: tableText, runId: runId,
                                                                   run: run, isCancelled: { context.isCancelled }, on: db))
                    }
                    state["ms"] = .int(Int(Date().timeIntervalSince(started) * 1000))
                    setNode(runId, node.id, .object(state))
                    context.report(progress: ["node": .string(node.id), "done": .int(tables.count), "total": .int(run.document.nodes.count)])
                }
                current = nil
                pruneIntermediates(schema: schema, keep: Set(tables.values.map(\.name.name)).union(published), on: db)
            }
        } catch {
            if context.isCancelled { return nil }
            let message: String
            let permanent: Bool
            if let e = error as? PGError, e.sqlstate != nil, !e.connectionLost {
                message = e.message
                permanent = true
            } else if let e = error as? APIError {
                message = e.message
                permanent = e.status < 500
            } else {
                message = String(describing: error)
                permanent = false
            }
            if let node = current {
                setNode(runId, node.id, ["status": "failure", "error": .string(message)])
            }
            let named = current.map { "node \($0.id) (\($0.type)): \(message)" } ?? message
            // The queue discards a job after its last attempt: the run must not stay "running" then.
            if permanent || job.attempt >= job.maxAttempts {
                try finish(runId, status: "failure", error: named)
                throw PermanentJobError(named)
            }
            throw error
        }
        if context.isCancelled { return nil }
        try finish(runId, status: "success", outputs: outputs)
        return ["run": .string(runId), "outputs": .object(outputs)]
    }

    /// `<node>_<hash>`: the hash covers the compiled SQL (text and values) — which names the input tables —
    /// and, for table inputs, the source table's modification counters, so changed data is read again.
    /// Custom SQL inputs may read anything, so they are never reused (their hash includes the run).
    func tableName(_ node: WorkflowDocument.Node, _ sql: SQL, runId: String, on db: PGConnection) throws -> String {
        var material = node.type + "\u{0}" + sql.text + "\u{0}" + JSON.array(sql.parameters.map(JSON.optional)).text
        if node.type == "table", let t = node.params["table"]?.stringValue, let name = try? QualifiedName(parsing: t) {
            let v = try db.execute("""
                SELECT s.n_tup_ins + s.n_tup_upd + s.n_tup_del, c.relfilenode FROM pg_class c
                LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass($1)
                """, [name.qualifiedIdentifier.text])
            material += "\u{0}" + (v.string(0, 0) ?? "") + ":" + (v.string(0, 1) ?? "")
        }
        if node.type == "sql" { material += "\u{0}run:" + runId }
        let hash = Crypto.sha256(Array(material.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
        return node.id.lowercased() + "_" + hash
    }

    /// The row count recorded on an existing node table, nil when the table does not exist.
    func existingRows(schema: Identifier, table: Identifier, on db: PGConnection) throws -> Int? {
        let r = try db.execute("SELECT obj_description(to_regclass($1), 'pg_class'), to_regclass($1) IS NOT NULL",
                               ["\(schema.quoted).\(table.quoted)"])
        guard r.bool(0, 1) == true else { return nil }
        return (r.string(0, 0).flatMap { try? JSON.decode($0) }?["rows"]?.intValue) ?? 0
    }

    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }

    /// save_table: replace = build under a temporary name, then drop and rename in one transaction; append =
    /// one INSERT. Either commits with the run's marker, so a retry never writes it twice, and queues the
    /// purge of the connection's cached tiles in the metadata database.
    func save(_ node: WorkflowDocument.Node, from source: SQL, runId: String, run: RunRow, account: String,
              variables: [String: JSON], watch: PGConnection.Watch, into fixed: QualifiedName? = nil,
              on db: PGConnection) throws -> String {
        let compiler = Compiler(node: node, inputs: [:], variables: variables)
        let target: QualifiedName
        if let fixed { target = fixed } else {
            let text = try compiler.requiredString("table")
            do { target = try QualifiedName(parsing: text) } catch { throw WorkflowError.invalid(error.description, node: node.id, parameter: "table") }
        }
        let mode = fixed == nil ? try compiler.choice("mode") : "replace"
        let building = try Identifier(String(target.table.prefix(40)) + "__tessera_new")
        let targetSchema = try Identifier(target.schemaOrPublic)
        try db.execute("BEGIN")
        do {
            try db.execute("SELECT set_config('statement_timeout', $1, true)", [String(services.config.sqlJobTimeoutMs)])
            if try db.execute("SELECT 1 FROM \(Self.outputMarkers) WHERE run_id = $1 AND node = $2", [runId, node.id]).rowCount == 1 {
                try db.execute("ROLLBACK")
                return target.description
            }
            if mode == "append", try db.execute("SELECT to_regclass($1) IS NOT NULL", [target.qualifiedIdentifier.text]).bool(0, 0) == true {
                try db.execute("INSERT INTO \(target.qualifiedIdentifier) SELECT * FROM \(source)" as SQL, watch: watch)
            } else {
                try db.execute("DROP TABLE IF EXISTS \(targetSchema).\(building)")
                try db.execute("CREATE TABLE \(targetSchema).\(building) AS SELECT * FROM \(source)" as SQL, watch: watch)
                try db.execute("DROP TABLE IF EXISTS \(target.qualifiedIdentifier)")
                try db.execute("ALTER TABLE \(targetSchema).\(building) RENAME TO \(try Identifier(target.table))")
            }
            try db.execute("INSERT INTO \(Self.outputMarkers) (run_id, node) VALUES ($1, $2)", [runId, node.id])
            try db.execute("COMMIT")
        } catch {
            if db.isHealthy { _ = try? db.execute("ROLLBACK") }
            throw error
        }
        try DataChange.record(account: account, connection: run.connection, table: target.description, pool: services.metadata)
        return target.description
    }

    /// Drops node tables of this workflow that the run did not use and that are older than the configured age.
    func pruneIntermediates(schema: Identifier, keep: Set<String>, on db: PGConnection) {
        // Housekeeping never fails a run that succeeded; what it could not drop is logged and retried next run.
        let maxAge = Double(services.config.workflowIntermediateTTLSeconds)
        do {
            let r = try db.execute("""
                SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relkind = 'r'
                """, [schema.name])
            let now = Date().timeIntervalSince1970
            for i in 0..<r.rowCount {
                guard let name = r.string(i, 0), !keep.contains(name) else { continue }
                let created = r.string(i, 1).flatMap { try? JSON.decode($0) }?["created"]?.doubleValue ?? 0
                guard now - created >= maxAge else { continue }
                _ = try db.execute("DROP TABLE IF EXISTS \(schema).\(try Identifier(name))")
            }
        } catch {
            Log.warning("workflow_prune_failed", [("schema", schema.name), ("error", String(describing: error))])
        }
    }
}
