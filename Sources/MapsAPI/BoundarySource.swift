import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// `boundaryTableSource` / `boundaryQuerySource` (`/api/v3/maps/{connection}/boundary`): a boundary table
/// (`tilesetTableName`: geometries with a `geoid` column, as CARTO's boundary datasets have) joined with the
/// properties of `propertiesTableName` or `propertiesSqlQuery` on `geoid`. The join is made in the tile
/// statement, so tiles are ordinary MVT with the joined properties (no separate `properties_tiles`); all
/// else (columns, filters, TileJSON, stats, budgets) is a query source's.
enum BoundarySource {
    static let joinColumn = "geoid"

    static func propertiesName(_ text: String) throws -> QualifiedName {
        try QualifiedName.parameter(text, named: "propertiesTableName", code: "invalid_source")
    }

    /// The properties side: the table, or the query with its own parameters.
    static func properties(_ d: SourceDefinition) throws -> SQL {
        if let table = d.propertiesTable { return try propertiesName(table).identifier }
        return SourceSQL.query(d)
    }

    /// The FROM item: every boundary column, then the properties' (the join column once). Pure.
    static func from(_ d: SourceDefinition) throws -> SQL {
        let join = try Identifier(joinColumn)
        return "(SELECT * FROM \(try SourceSQL.table(d).identifier) AS _b JOIN \(try properties(d)) AS _p USING (\(join)))"
    }

    /// A missing join column on either side is a 400 naming the parameter that brought that side.
    static func checkJoin(_ d: SourceDefinition, connection db: PGConnection, watch: PGConnection.Watch) throws {
        let sides: [(String, SQL)] = [("tilesetTableName", try SourceSQL.table(d).identifier),
                                      (d.propertiesTable != nil ? "propertiesTableName" : "propertiesSqlQuery", try properties(d))]
        for (parameter, from) in sides {
            let schema = try SourceSchema.describe(from: from, connection: db, watch: watch)
            guard schema.kind(of: joinColumn) != nil else {
                throw APIError.badRequest("\(parameter): the join column \(joinColumn) is missing", code: "column_not_found")
            }
        }
    }
}
