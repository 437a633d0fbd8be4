import HTTPKit
import Postgres

/// H3 in a warehouse is the `tessera_h3` PostgreSQL extension (packaging/h3, Debian package
/// postgresql-15-tessera-h3): carto.h3_* functions in C. Tile and widget SQL on H3 sources call
/// `require` first so a warehouse without it answers one clear 400 instead of "function does not exist".
public enum WarehouseH3 {
    public static let extensionName = "tessera_h3"
    public static let debianPackage = "postgresql-15-tessera-h3"
    /// Raised by carto.h3_polyfill / h3_tochildren past their max_cells bound (SQLStateStatus maps it to 400).
    public static let tooManyCellsSQLState = "TH301"

    public static let unavailableMessage =
        "H3 functions are not installed in this warehouse: install the \(debianPackage) package on its PostgreSQL "
        + "server, then run `tessera warehouse-migrate` (or CREATE EXTENSION \(extensionName) as the database owner)"

    public static func isInstalled(_ db: PGConnection, watch: PGConnection.Watch = .none) throws -> Bool {
        try db.execute("SELECT EXISTS (SELECT FROM pg_extension WHERE extname = $1)", [extensionName], watch: watch).bool(0, 0) == true
    }

    public static func require(_ db: PGConnection, watch: PGConnection.Watch = .none) throws {
        guard try isInstalled(db, watch: watch) else {
            throw APIError.badRequest(unavailableMessage, code: "h3_unavailable",
                                      hint: "See the README's H3 section")
        }
    }

    /// Creates or updates the extension where the server has it and the role may (database owner:
    /// the extension is trusted). Returns what happened, for warehouse-migrate's report; never fails
    /// the migration, because H3 is optional for a warehouse that has no H3 sources.
    public static func install(_ db: PGConnection) throws -> String {
        let r = try db.execute("""
            SELECT a.default_version, e.extversion FROM pg_available_extensions a
            LEFT JOIN pg_extension e ON e.extname = a.name WHERE a.name = $1
            """, [extensionName])
        guard r.rowCount == 1, let available = r.string(0, 0) else {
            return "\(extensionName) skipped (not on this server: install \(debianPackage) there)"
        }
        if let installed = r.string(0, 1) {
            guard installed != available else { return "\(extensionName) \(installed)" }
            try db.execute("ALTER EXTENSION tessera_h3 UPDATE" as String)
            return "\(extensionName) \(installed) -> \(available)"
        }
        do {
            try db.execute("CREATE EXTENSION IF NOT EXISTS tessera_h3" as String)
        } catch let e as PGError where e.sqlstate == "42501" {
            return "\(extensionName) skipped (this role may not create extensions: \(e.message))"
        } catch let e as PGError where e.sqlstate == "42704" {
            return "\(extensionName) skipped (it needs PostGIS in this database: \(e.message))"
        }
        return "\(extensionName) \(available)"
    }
}
