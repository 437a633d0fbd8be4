/// How a result column is typed in `schema` and written in JSON, decided from its type oid.
public enum ColumnKind: Sendable, Equatable {
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
