import Foundation
import HTTPKit
import Observability
import Postgres
import SQLKit

/// The warehouse side of one import: staging table, tidy-up, the atomic swap and the idempotency
/// marker. Statements are SQL values: identifiers quoted by `Identifier`, values bound.
struct Warehouse {
    let pool: PGPool
    let schema: String
    let staging: String
    let jobId: Int64

    struct Stats {
        var rows = 0
        var geometryType: String?
        var warnings: [String] = []
    }

    /// `"schema"."table"` in the import's schema.
    func qualified(_ table: String) -> SQL {
        QualifiedName(schema: schema, table: table).identifier
    }

    /// From the catalog, which any role may read: `to_regclass` itself fails without USAGE on the schema,
    /// which a warehouse role other than the one that made the table need not have.
    static let markersExist = """
        SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'carto' AND c.relname = 'tessera_import_markers')
        """
    static let markersUsable = """
        SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'carto' AND c.relname = 'tessera_import_markers'
                         AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
                         AND has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'DELETE'))
        """

    /// Creates the marker table when missing. False when the role may not (imports then work without
    /// the crash-window protection; logged).
    func ensureMarkers() -> Bool {
        do {
            try pool.withConnection { db in
                if try db.execute(Self.markersExist).bool(0, 0) == true {
                    // Made by another role (e.g. the warehouse owner): usable by this one only if granted.
                    guard try db.execute(Self.markersUsable).bool(0, 0) == true else {
                        throw PGError(sqlstate: "42501", message: "no privilege on \(ImportRunner.markers)")
                    }
                    return
                }
                do {
                    try db.executeScript("""
                        CREATE SCHEMA IF NOT EXISTS carto;
                        CREATE TABLE IF NOT EXISTS \(ImportRunner.markers) (
                            job_id bigint PRIMARY KEY, destination text NOT NULL, result jsonb, finished_at timestamptz NOT NULL DEFAULT now());
                        """)
                } catch let e as PGError where e.sqlstate == "23505" || e.sqlstate == "42P07" {
                    // Created concurrently by another import.
                }
            }
            return true
        } catch {
            Log.warning("import_markers_unavailable", [("job", jobId), ("error", String(describing: error))])
            return false
        }
    }

    func marker() throws -> JSON? {
        try pool.withConnection { db in
            let r = try db.execute("SELECT result::text FROM \(ImportRunner.markers) WHERE job_id = $1", [String(jobId)])
            guard r.rowCount == 1 else { return nil }
            return r.string(0, 0).flatMap { try? JSON.decode($0) } ?? ["alreadyApplied": true]
        }
    }

    /// Ends any session a dead attempt's ogr2ogr left (same application_name) and drops its staging tables
    /// (the second one of a file loaded in two halves included).
    func dropLeftovers(applicationName: String) throws {
        try pool.withConnection { db in
            _ = try db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
                               [applicationName])
            try db.execute("BEGIN")
            do {
                try db.execute("SET LOCAL lock_timeout = '20s'")
                try db.execute("DROP TABLE IF EXISTS \(qualified(staging)), \(qualified(secondStaging))" as SQL)
                try db.execute("COMMIT")
            } catch {
                if db.isHealthy { _ = try? db.execute("ROLLBACK") }
                throw error
            }
        }
    }

    func requireSchema() throws {
        let found = try pool.withConnection { db in
            try db.execute("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]).rowCount == 1
        }
        if !found { throw ImportFailure("Schema \(schema) does not exist in the warehouse") }
    }

    func exists(_ table: String) throws -> Bool {
        try pool.withConnection { db in
            try db.execute("SELECT to_regclass(\(qualified(table).text)) IS NOT NULL" as SQL).bool(0, 0) ?? false
        }
    }

    /// Column names made CARTO-style (lower case, `_`), the geometry column named `geom` and indexed, the
    /// `cartodb_id` sequence moved past the loaded ids, statistics gathered; returns counts and warnings.
    ///
    /// After the names (committed on their own: the staging table is private to this attempt until the
    /// swap, and a failed attempt's table is dropped whole), the work with a geometry runs on two sessions
    /// at once when the pool has a second connection free: this one gathers statistics and builds the
    /// index, the other counts rows, rows without geometry and invalid geometries in one scan
    /// (`StagingScan`). Neither waits for the other's locks (SELECT takes ACCESS SHARE). Serially the
    /// tidy-up was a third of a GeoJSON import after the load.
    func finishStaging(geometryName: String, deadline: Date, phases: inout ImportPhases) throws -> Stats {
        try pool.withConnection { db in
            let table = qualified(staging)
            guard try db.execute("SELECT to_regclass(\(table.text)) IS NOT NULL" as SQL).bool(0, 0) == true else {
                throw ImportFailure("The file contains no rows")
            }
            var stats = Stats()
            let geometry = try phases.measure("names") {
                try transaction(db, deadline: deadline) { try tidyNames(db, table: table, geometryName: geometryName) }
            }
            guard geometry != nil else {
                try transaction(db, deadline: deadline) {
                    let r = try db.execute("SELECT count(*), max(cartodb_id) FROM \(table)" as SQL)
                    stats.rows = r.int(0, 0) ?? 0
                    guard stats.rows > 0 else { throw ImportFailure("The file contains no rows") }
                    try moveSequence(db, table: table, past: r.string(0, 1))
                }
                stats.warnings.append("No geometry column was found; the data was imported as a table without geometry")
                try phases.measure("analyze") { try db.execute("ANALYZE \(table)" as SQL) }
                return stats
            }
            stats.geometryType = geometry.map { t in
                // geometry(MultiPolygon,4326) -> MultiPolygon
                t.split(separator: "(").dropFirst().first?.split(separator: ",").first.map(String.init) ?? t
            }
            let parallel = StagingScan.Parallel(pool: pool, table: table, deadline: deadline)
            defer { parallel?.finish() }
            try transaction(db, deadline: deadline) {
                try phases.measure("analyze") { try db.execute("ANALYZE \(table)" as SQL) }
                // Built after the load (the loader asks GDAL for none), named as GDAL would name it.
                try db.execute("SELECT set_config('maintenance_work_mem', '128MB', true)")
                try phases.measure("index") {
                    try db.execute("CREATE INDEX \(try Identifier(staging + "_geom_geom_idx")) ON \(table) USING GIST (geom)" as SQL)
                }
                // From the primary key's index: no scan.
                try moveSequence(db, table: table, past: try db.execute("SELECT max(cartodb_id) FROM \(table)" as SQL).string(0, 0))
            }
            let started = DispatchTime.now().uptimeNanoseconds
            // No free connection, or the other session failed: the scan runs here.
            let scan = try (parallel?.result()) ?? StagingScan.run(on: db, table: table, deadline: deadline)
            phases.record(parallel == nil ? "scan" : "scanWait", since: started)
            if parallel != nil { phases.add("scan", ms: scan.ms) }
            stats.rows = scan.rows
            guard stats.rows > 0 else { throw ImportFailure("The file contains no rows") }
            if scan.empty > 0 { stats.warnings.append("\(scan.empty) of \(stats.rows) rows have no geometry") }
            // Broken geometries are flagged, not repaired.
            if let invalid = scan.invalid {
                if invalid > 0 { stats.warnings.append("\(invalid) geometries are invalid (ST_IsValid is false); they were kept as they are") }
            } else {
                stats.warnings.append("Geometry validity was not checked (the check took too long)")
            }
            return stats
        }
    }

    /// `body` in a transaction whose statements end by the import's deadline.
    private func transaction<T>(_ db: PGConnection, deadline: Date, _ body: () throws -> T) throws -> T {
        try StagingScan.inTransaction(db, timeoutMs: StagingScan.remainingMs(deadline), body)
    }

    /// Renames the attributes CARTO-style and the geometry column to `geom`; returns the geometry
    /// column's type, nil when there is none.
    private func tidyNames(_ db: PGConnection, table: SQL, geometryName: String) throws -> String? {
        let columns = try db.execute("""
            SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = \(table.text)::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """ as SQL)
        var taken: Set<String> = ["cartodb_id", "geom"]
        var geometry: String?
        for i in 0..<columns.rowCount {
            let name = columns.string(i, 0)!, type = columns.string(i, 1) ?? ""
            if name == "cartodb_id" { continue }
            if name == geometryName && type.hasPrefix("geometry") {
                geometry = type
                continue
            }
            var new = ColumnNames.sanitize(name)
            if taken.contains(new) {
                var n = 1
                while taken.contains("\(new.prefix(58))_\(n)") { n += 1 }
                new = "\(new.prefix(58))_\(n)"
            }
            taken.insert(new)
            if new != name {
                try db.execute("ALTER TABLE \(table) RENAME COLUMN \(try Identifier(name)) TO \(try Identifier(new))" as SQL)
            }
        }
        // After the attributes: one of them may have been called geom (now geom_1).
        if geometry != nil && geometryName != "geom" {
            try db.execute("ALTER TABLE \(table) RENAME COLUMN \(try Identifier(geometryName)) TO geom" as SQL)
        }
        return geometry
    }

    /// The `cartodb_id` sequence past the highest loaded id, so rows added later get new ids.
    private func moveSequence(_ db: PGConnection, table: SQL, past maxId: String?) throws {
        _ = try db.execute("""
            SELECT setval(pg_get_serial_sequence(\(table.text), 'cartodb_id'), greatest(\(maxId)::bigint, 1), \(maxId)::bigint IS NOT NULL)
            """ as SQL)
    }

    /// ONE transaction: drop the old table when overwriting (refusing when it exists and overwrite is
    /// off), rename the staging table and its index/sequence names, insert the marker.
    func swap(into target: String, overwrite: Bool, result: JSON) throws {
        try pool.withConnection { db in
            let staged = qualified(staging), destination = qualified(target)
            try db.execute("BEGIN")
            do {
                try db.execute("SET LOCAL lock_timeout = '30s'")
                guard try db.execute("SELECT to_regclass(\(staged.text)) IS NOT NULL" as SQL).bool(0, 0) == true else {
                    throw ImportFailure("The staging table disappeared before the swap", permanent: false)
                }
                if try db.execute("SELECT to_regclass(\(destination.text)) IS NOT NULL" as SQL).bool(0, 0) == true {
                    guard overwrite else {
                        throw ImportFailure("Table \(schema).\(target) already exists; set overwrite=true to replace it")
                    }
                    do {
                        try db.execute("DROP TABLE \(destination)" as SQL)
                    } catch let e as PGError where e.sqlstate == "2BP01" || e.sqlstate == "42809" {
                        throw ImportFailure("Table \(schema).\(target) cannot be replaced: \(e.message)")
                    }
                }
                try db.execute("ALTER TABLE \(staged) RENAME TO \(try Identifier(target))" as SQL)
                // Indexes and the id sequence keep their staging names unless a tidy name is free.
                let owned = try db.execute("""
                    SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = $1 AND starts_with(c.relname, $2) AND c.relkind IN ('i', 'S')
                    """, [schema, staging + "_"])
                for i in 0..<owned.rowCount {
                    let name = owned.string(i, 0)!, kind = owned.string(i, 1)!
                    let tidy = target + name.dropFirst(staging.count)
                    guard tidy.utf8.count <= 63 else { continue }
                    let free = try db.execute("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                                              [schema, tidy]).rowCount == 0
                    guard free else { continue }
                    let object = qualified(name)
                    let rename: SQL = kind == "S" ? "ALTER SEQUENCE \(object) RENAME TO \(try Identifier(tidy))"
                        : "ALTER INDEX \(object) RENAME TO \(try Identifier(tidy))"
                    try db.execute(rename)
                }
                if try db.execute(Self.markersUsable).bool(0, 0) == true {
                    try db.execute("INSERT INTO \(ImportRunner.markers) (job_id, destination, result) VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING",
                                   [String(jobId), "\(schema).\(target)", result.text])
                    try db.execute("DELETE FROM \(ImportRunner.markers) WHERE finished_at < now() - interval '30 days'")
                }
                try db.execute("COMMIT")
            } catch {
                if db.isHealthy { _ = try? db.execute("ROLLBACK") }
                throw error
            }
        }
    }
}
