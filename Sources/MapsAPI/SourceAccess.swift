import Foundation
import HTTPKit
import Platform

/// Whether a principal may read a source: users read anything on their organisation's connections;
/// API Access Tokens need a grant naming the table (or its schema, or `*`) or the exact SQL.
enum SourceAccess {
    static func authorize(_ principal: Principal, _ d: SourceDefinition) throws {
        switch principal.access(to: d.connection) {
        case .everything:
            return
        case .none:
            throw denied(d)
        case .granted(let grants):
            let allowed: Bool
            switch d.kind {
            case .query:
                allowed = grants.contains { $0.allowsQuery(d.sql ?? "") }
            case .boundary:
                let boundary = try SourceSQL.table(d)
                let propertiesAllowed = try d.propertiesTable.map { table in
                    let name = try BoundarySource.propertiesName(table)
                    return grants.contains { $0.allowsTable(schema: name.schemaOrPublic, table: name.table) }
                } ?? grants.contains { $0.allowsQuery(d.sql ?? "") }
                allowed = propertiesAllowed && grants.contains { $0.allowsTable(schema: boundary.schemaOrPublic, table: boundary.table) }
            case .table, .tileset, .raster:
                let name = try SourceSQL.table(d)
                allowed = grants.contains { $0.allowsTable(schema: name.schemaOrPublic, table: name.table) }
            }
            guard allowed else { throw denied(d) }
            // Raw SQL fragments from the client are only accepted from scoped tokens in a strict form.
            if let exp = d.aggregationExp { try AggregationExpression.validate(exp) }
        }
    }

    static func denied(_ d: SourceDefinition) -> APIError {
        APIError.forbidden("The token has no grant for this source", code: "source_not_granted")
    }
}

/// `aggregationExp` is SQL from the client. For scoped tokens it must be a list of
/// `<count|sum|avg|min|max>(<column>|*) [AS] <alias>` or `<number> AS <alias>` items.
enum AggregationExpression {
    static func validate(_ exp: String) throws {
        let item = #"^\s*(?:(?:count|sum|avg|min|max)\s*\(\s*(?:\*|"?[A-Za-z_][A-Za-z0-9_]*"?)\s*\)|-?[0-9]+(?:\.[0-9]+)?)\s+(?:as\s+)?"?[A-Za-z_][A-Za-z0-9_]*"?\s*$"#
        for part in exp.split(separator: ",") {
            guard String(part).range(of: item, options: [.regularExpression, .caseInsensitive]) != nil else {
                throw APIError.forbidden("aggregationExp must be simple aggregates (count, sum, avg, min, max) for scoped tokens", code: "source_not_granted")
            }
        }
    }
}
