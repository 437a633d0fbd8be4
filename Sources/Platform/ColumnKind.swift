import Postgres

/// How a result column is typed in `schema` and written in JSON, decided from its type oid.
public enum ColumnKind: Sendable, Equatable, CaseIterable {
    case number, boolean, string, date, timestamp, json, geometry

    /// CARTO's schema type names.
    public var schemaType: String {
        switch self {
        case .number: return "number"
        case .boolean: return "boolean"
        case .string: return "string"
        case .date: return "date"
        case .timestamp: return "timestamp"
        case .json: return "object"
        case .geometry: return "geometry"
        }
    }

    /// Built-in oids are fixed; PostGIS types get theirs at CREATE EXTENSION, so they are passed in.
    public static func of(oid: UInt32, geometryOids: Set<UInt32>) -> ColumnKind {
        if geometryOids.contains(oid) { return .geometry }
        switch oid {
        case 20, 21, 23, 26, 700, 701, 1700: return .number
        case 16: return .boolean
        case 1082: return .date
        case 1114, 1184: return .timestamp
        case 114, 3802: return .json
        default: return .string
        }
    }
}

extension PGConnection {
    /// The oids of PostGIS's geometry and geography types in this database, looked up once per connection.
    public func geometryOids() throws -> Set<UInt32> {
        if let cached = attachments["geometryOids"] as? Set<UInt32> { return cached }
        let r = try execute("SELECT oid FROM pg_type WHERE typname IN ('geometry', 'geography') AND typtype = 'b'")
        let oids = Set((0..<r.rowCount).compactMap { r.string($0, 0).flatMap { UInt32($0) } })
        attachments["geometryOids"] = oids
        return oids
    }
}
