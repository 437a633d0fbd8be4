import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

/// What to geocode: `{connection, table, addressColumn | addressColumns[], countryColumn? | country?, geomColumn?}`.
/// Several address columns are joined with ", " in the given order ("street, city").
struct GeocodeTableSpec: Sendable {
    let connection: String
    let table: String
    let addressColumns: [String]
    let countryColumn: String?
    let country: String?
    let geomColumn: String

    init(_ p: Parameters) throws {
        func required(_ name: String) throws -> String {
            guard let v = p.string(name)?.trimmingCharacters(in: .whitespaces), !v.isEmpty else {
                throw APIError.badRequest("Missing required parameter: \(name)", code: "missing_parameter")
            }
            return v
        }
        connection = try required("connection")
        table = try required("table")
        _ = try Self.tableName(table)
        if let list = try p.json("addressColumns") {
            guard let items = list.arrayValue?.compactMap(\.stringValue), !items.isEmpty, items.count == list.arrayValue?.count else {
                throw APIError.badRequest("addressColumns must be a non-empty array of column names", code: "invalid_parameter")
            }
            addressColumns = items
        } else {
            addressColumns = [try required("addressColumn")]
        }
        countryColumn = p.string("countryColumn")
        country = try GeocodingRoutes.country(p.string("country"))
        geomColumn = p.string("geomColumn") ?? "geom"
    }

    /// `[database.][schema.]table`, parsed by the one qualified-name parser.
    static func tableName(_ text: String) throws -> QualifiedName {
        try QualifiedName.parameter(text, named: "table")
    }

    init(json: JSON) throws {
        guard let c = json["connection"]?.stringValue, let t = json["table"]?.stringValue,
              let cols = json["addressColumns"]?.arrayValue?.compactMap(\.stringValue), !cols.isEmpty,
              let g = json["geomColumn"]?.stringValue else { throw PermanentJobError("The job's payload is incomplete") }
        connection = c
        table = t
        addressColumns = cols
        countryColumn = json["countryColumn"]?.stringValue
        country = json["country"]?.stringValue
        geomColumn = g
    }

    var json: JSON {
        ["connection": .string(connection), "table": .string(table), "addressColumns": .array(addressColumns.map { .string($0) }),
         "countryColumn": .optional(countryColumn), "country": .optional(country), "geomColumn": .string(geomColumn)]
    }
}

/// Runs geocode-table jobs in the sql-worker. Rows are taken in batches under `FOR UPDATE SKIP LOCKED`;
/// each batch writes the point and the marker column `lds_geocoded_at` in one transaction, so after a crash
/// only rows with a NULL geometry and no marker are taken again: no row is geocoded twice, and rows the
/// geocoder could not place are not retried forever.
public struct GeocodeTableRunner: Sendable {
    public static let queue = "sql"
    public static let kind = "lds_geocode_table"
    static let marker = "lds_geocoded_at"
    let services: Services
    public var batchSize = 200

    public init(services: Services) { self.services = services }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        guard let account = job.accountId else { throw PermanentJobError("The job has no organisation") }
        let spec = try GeocodeTableSpec(json: job.payload)
        let started = Date()
        let lds = LDSContext(services: services)
        let provider = try lds.providers.provider(account: account, service: .geocoding)
        let record: ConnectionRecord
        do { record = try services.warehouses.connection(account: account, name: spec.connection) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        return try services.warehouses.privilegedPool(for: record).withConnection { db -> JSON in
            defer { if db.isHealthy && !db.isIdle { _ = try? db.execute("ROLLBACK") } }
            let sql = try GeocodeTableSQL(spec)
            try sql.checkExists(db, spec)
            for statement in sql.prepare { try db.execute(statement) }
            var processed = 0, geocoded = 0
            let total = try db.execute(sql.remaining).int(0, 0) ?? 0
            while !context.isCancelled {
                try db.execute("BEGIN")
                let rows = try db.execute(sql.claim.text, sql.claim.parameters(filling: ["limit": String(batchSize)])!)
                if rows.rowCount == 0 { try db.execute("COMMIT"); break }
                let queries = (0..<rows.rowCount).map { GeocodeQuery(address: rows.string($0, 1) ?? "", country: rows.string($0, 2), limit: 1) }
                let usable = queries.enumerated().filter { !$0.element.address.trimmingCharacters(in: .whitespaces).isEmpty }
                var points = [JSON](repeating: .null, count: rows.rowCount)
                if !usable.isEmpty {
                    do {
                        try lds.quotas.charge(account: account, service: .geocoding, units: usable.count)
                    } catch let e as APIError {
                        throw PermanentJobError("\(e.message) after \(processed) rows; retry the job next month or after raising the quota")
                    }
                    let answers = try provider.geocodeBatch(usable.map(\.element))
                    for (entry, answer) in zip(usable, answers) {
                        if case .success(let places) = answer, let p = places.first {
                            points[entry.offset] = ["lon": .number(p.longitude), "lat": .number(p.latitude)]
                        }
                    }
                }
                let updates = JSON.array((0..<rows.rowCount).map { i in
                    ["ctid": .optional(rows.string(i, 0)), "lon": points[i]["lon"] ?? .null, "lat": points[i]["lat"] ?? .null]
                })
                try db.execute(sql.update.text, sql.update.parameters(filling: ["updates": updates.text])!)
                try db.execute("COMMIT")
                processed += rows.rowCount
                geocoded += points.filter { !$0.isNull }.count
                context.report(progress: ["processed": .int(processed), "geocoded": .int(geocoded), "total": .int(total)])
            }
            let totals = try db.execute(sql.totals)
            Log.info("lds_geocode_table", [("job", job.id), ("processed", processed), ("geocoded", geocoded)])
            if processed > 0 {
                // The table's geometries changed: cached answers go and its levels are rebuilt by the queue. The
                // batches are committed, so a failure to ask is logged rather than failing the job.
                do { try DataChange.record(account: account, connection: spec.connection, table: spec.table, pool: services.metadata) } catch {
                    Log.warning("data_change_not_queued", [("job", job.id), ("error", "\(error)")])
                }
            }
            return ["processed": .int(processed), "geocoded": .int(geocoded), "notFound": .int(processed - geocoded),
                    "tableGeocoded": .int(totals.int(0, 0) ?? 0), "tableNotFound": .int(totals.int(0, 1) ?? 0),
                    "seconds": .number((Date().timeIntervalSince(started) * 10).rounded() / 10)]
        }
    }
}

/// The job's SQL: a pure function of the spec (identifiers quoted by `Identifier`, values bound).
struct GeocodeTableSQL {
    let table: QualifiedName
    /// Adds the geometry and marker columns (each statement on its own).
    let prepare: [SQL]
    let remaining: SQL
    /// One batch of pending rows; the batch size is the slot `limit`.
    let claim: SQL
    /// Writes a batch; the slot `updates` is the JSON array of `{ctid, lon, lat}`.
    let update: SQL
    let totals: SQL

    init(_ spec: GeocodeTableSpec) throws {
        table = try GeocodeTableSpec.tableName(spec.table)
        let t = table.qualifiedIdentifier
        let geom = try Identifier(spec.geomColumn)
        let marker = try Identifier(GeocodeTableRunner.marker)
        let address: SQL = "concat_ws(', ', \(try spec.addressColumns.map { "\(try Identifier($0))::text" as SQL }, joinedBy: ", "))"
        let country: SQL
        if let c = spec.countryColumn { country = "NULLIF(upper(btrim(\(try Identifier(c))::text)), '')" } else {
            country = "\(spec.country)::text"
        }
        prepare = [
            "ALTER TABLE \(t) ADD COLUMN IF NOT EXISTS \(geom) geometry(Point, 4326)",
            "ALTER TABLE \(t) ADD COLUMN IF NOT EXISTS \(marker) timestamptz",
        ]
        let pending: SQL = "\(geom) IS NULL AND \(marker) IS NULL"
        remaining = "SELECT count(*) FROM \(t) WHERE \(pending)"
        claim = "SELECT ctid::text, \(address), \(country) FROM \(t) WHERE \(pending) LIMIT \(SQL.slot("limit")) FOR UPDATE SKIP LOCKED"
        update = """
            UPDATE \(t) AS t SET \(geom) = CASE WHEN v.lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326) END,
                   \(marker) = now()
            FROM json_to_recordset(\(SQL.slot("updates"))::json) AS v(ctid text, lon float8, lat float8)
            WHERE t.ctid = v.ctid::tid
            """
        totals = "SELECT count(*) FILTER (WHERE \(marker) IS NOT NULL AND \(geom) IS NOT NULL), count(*) FILTER (WHERE \(marker) IS NOT NULL AND \(geom) IS NULL) FROM \(t)"
    }

    /// The table and the columns the job reads must exist: a job that cannot succeed fails for good.
    func checkExists(_ db: PGConnection, _ spec: GeocodeTableSpec) throws {
        let exists = try db.execute("SELECT to_regclass(format('%I.%I', \(table.schemaOrPublic)::text, \(table.table)::text)) IS NOT NULL" as SQL)
        guard exists.bool(0, 0) == true else { throw PermanentJobError("Table not found: \(spec.table)") }
        let r = try db.execute("""
            SELECT attname FROM pg_attribute
            WHERE attrelid = format('%I.%I', \(table.schemaOrPublic)::text, \(table.table)::text)::regclass AND attnum > 0 AND NOT attisdropped
            """ as SQL)
        let columns = Set((0..<r.rowCount).compactMap { r.string($0, 0) })
        for c in spec.addressColumns + [spec.countryColumn].compactMap({ $0 }) where !columns.contains(c) {
            throw PermanentJobError("Column not found: \(c)")
        }
    }
}
