import Foundation
import Postgres
import SQLKit

/// The second staging table of a GeoJSON file loaded in two halves (`Loader.runSplit`), and its merge
/// into the first.
extension Warehouse {
    /// Named after the first, so that `dropLeftovers` finds it; dropped by the merge before the swap.
    var secondStaging: String { staging + "_second" }

    /// Column types GDAL gives GeoJSON attributes (PRECISION=NO): the only ones the merge adds to the first
    /// table for an attribute only the second half has. Anything else makes the caller load the file whole.
    static let addableTypes: Set<String> = ["integer", "bigint", "double precision", "character varying", "boolean", "date",
                                            "time without time zone", "timestamp with time zone", "integer[]", "bigint[]",
                                            "double precision[]", "character varying[]", "json"]

    /// Appends the second half's rows to the first staging table, numbered after the first half's, and drops
    /// the second; in one transaction. GDAL chose each half's column types from that half alone: the merge
    /// goes ahead only when it gives what one load of the whole file would: the same type for every shared
    /// column, and both halves' `cartodb_id`s 1...n as COPY numbers them. An attribute only the second half
    /// has (sparse properties are common) is added as the last column, where one load would have put it
    /// before the geometry: reordering would rewrite the table, and loading whole would cost the split's
    /// gain. Otherwise it changes nothing and returns false: the caller then loads the file whole.
    func appendSecondHalf(deadline: Date) throws -> Bool {
        try pool.withConnection { db in
            try StagingScan.inTransaction(db, timeoutMs: StagingScan.remainingMs(deadline)) {
                let first = qualified(staging), second = qualified(secondStaging)
                let columnsA = try columns(db, first), columnsB = try columns(db, second)
                let typesA = Dictionary(columnsA.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
                var added: [(name: String, type: String)] = []
                for column in columnsB {
                    if let type = typesA[column.name] {
                        guard type == column.type else { return false }
                    } else {
                        guard Self.addableTypes.contains(column.type) else { return false }
                        added.append(column)
                    }
                }
                let names = try columnsB.map { SQL(unsafeRaw: try Identifier($0.name).quoted) }
                guard !names.isEmpty, let countA = try denseIds(db, first), try denseIds(db, second) != nil else { return false }
                // As for the loads' own commits: the swap's commit flushes the WAL up to here, and a crash before
                // it leaves tables the retry drops; this commit need not wait for the disk.
                try db.execute("SET LOCAL synchronous_commit = off")
                for column in added {
                    try db.execute("ALTER TABLE \(first) ADD COLUMN \(try Identifier(column.name)) \(unsafeRaw: column.type)" as SQL)
                }
                try db.execute("""
                    INSERT INTO \(first) (cartodb_id, \(names, joinedBy: ", "))
                    SELECT cartodb_id + \(literal: countA), \(names, joinedBy: ", ") FROM \(second)
                    """ as SQL)
                try db.execute("DROP TABLE \(second)" as SQL)
                return true
            }
        }
    }

    private func columns(_ db: PGConnection, _ table: SQL) throws -> [(name: String, type: String)] {
        let r = try db.execute("""
            SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = \(table.text)::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'cartodb_id' ORDER BY attnum
            """ as SQL)
        return (0..<r.rowCount).map { (r.string($0, 0)!, r.string($0, 1) ?? "") }
    }

    /// The row count when the ids are exactly 1...count, else nil.
    private func denseIds(_ db: PGConnection, _ table: SQL) throws -> Int? {
        let r = try db.execute("SELECT count(*), min(cartodb_id), max(cartodb_id) FROM \(table)" as SQL)
        guard let count = r.int(0, 0), count > 0, r.int(0, 1) == 1, r.int(0, 2) == count else { return nil }
        return count
    }
}
