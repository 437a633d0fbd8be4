import Foundation
import HTTPKit
import Platform
import SQLKit

/// CARTO filters (contract §5.3) as a SQL condition with bound values:
/// `{"col": {"in": {"values": [...]}, "between": {"values": [[a, b]]}, "closed_open": …, "time": …, "stringSearch": …}}`.
/// Columns must exist in the source's schema; `owner` and unknown keys inside a filter are ignored.
enum FilterSQL {
    static let operations: Set<String> = ["in", "between", "closed_open", "time", "stringSearch"]
    static let maxValues = 10_000

    /// Structural validation, before any database work.
    static func validate(_ filters: JSON) throws {
        guard let columns = filters.objectValue else { throw invalid("filters must be a JSON object") }
        for (column, spec) in columns {
            guard let ops = spec.objectValue else { throw invalid("filter for \(column) must be an object") }
            for (op, body) in ops where op != "owner" {
                guard operations.contains(op) else { throw invalid("Unknown filter type \(op)") }
                guard let values = body["values"]?.arrayValue else { throw invalid("filter \(op) on \(column) needs values") }
                guard values.count <= maxValues else { throw invalid("Too many filter values") }
                if ["between", "closed_open", "time"].contains(op) {
                    for pair in values {
                        guard let bounds = pair.arrayValue, bounds.count == 2,
                              bounds.allSatisfy({ $0.isNull || $0.doubleValue != nil || $0.stringValue != nil }) else {
                            throw invalid("filter \(op) on \(column) needs [min, max] pairs")
                        }
                    }
                } else if !values.allSatisfy({ $0.isNull || $0.doubleValue != nil || $0.stringValue != nil || $0.boolValue != nil }) {
                    throw invalid("filter \(op) on \(column) takes scalar values")
                }
            }
        }
    }

    static func invalid(_ message: String) -> APIError { APIError.badRequest(message, code: "invalid_filter") }

    static func columnNotFound(_ column: String) -> APIError {
        var e = APIError.badRequest("Column not found", code: "column_not_found")
        e.columnName = column
        return e
    }

    /// The condition for `filters` over columns of `alias`, or nil when there is none. Pure: the schema says
    /// which columns exist and how to compare them.
    static func condition(_ filters: JSON?, or: Bool, alias: StaticString = "_src", schema: SourceSchema) throws -> SQL? {
        guard let columns = filters?.objectValue, !columns.isEmpty else { return nil }
        let table = SQL(unsafeRaw: "\(alias)")  // the builders' own constant alias (`_src`)
        var clauses: [SQL] = []
        for column in columns.keys.sorted() {
            guard let kind = schema.kind(of: column) else { throw columnNotFound(column) }
            let ref: SQL = "\(table).\(try Identifier(column))"
            var parts: [SQL] = []
            for (op, body) in columns[column]!.objectValue!.sorted(by: { $0.key < $1.key }) where op != "owner" {
                let values = body["values"]?.arrayValue ?? []
                switch op {
                case "in":
                    parts.append(try inList(ref, kind: kind, values))
                case "between", "closed_open", "time":
                    let ranges = try values.map { pair -> SQL in
                        let bounds = pair.arrayValue!
                        var conds: [SQL] = []
                        if !bounds[0].isNull { conds.append("\(ref) >= \(try bound(bounds[0], kind: kind, time: op == "time"))") }
                        if !bounds[1].isNull {
                            let upper = try bound(bounds[1], kind: kind, time: op == "time")
                            // `time` is inclusive like `between`: the client's own local filter (filterTime in
                            // @carto/api-client) applies filterBetween, so a feature at the upper bound must match.
                            conds.append(op == "closed_open" ? "\(ref) < \(upper)" : "\(ref) <= \(upper)")
                        }
                        return conds.isEmpty ? "TRUE" : "(\(conds, joinedBy: " AND "))"
                    }
                    parts.append(ranges.isEmpty ? "FALSE" : "(\(ranges, joinedBy: " OR "))")
                case "stringSearch":
                    parts.append(stringSearch(ref, values, params: body["params"]?.objectValue ?? [:]))
                default:
                    break
                }
            }
            if !parts.isEmpty { clauses.append(SQL.join(parts, separator: " AND ")) }
        }
        guard !clauses.isEmpty else { return nil }
        return "(\(clauses.map { "(\($0))" as SQL }, joinedBy: or ? " OR " : " AND "))"
    }

    static func text(_ v: JSON) -> String? {
        switch v {
        case .string(let s): return s
        case .number(let n): return n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .bool(let x): return x ? "true" : "false"
        default: return nil
        }
    }

    static func inList(_ ref: SQL, kind: ColumnKind, _ values: [JSON]) throws -> SQL {
        let texts = values.compactMap(text)
        let hasNull = values.contains { $0.isNull }
        var cond: SQL
        switch kind {
        case .number:
            guard texts.allSatisfy({ Double($0) != nil }) else { throw invalid("in filter values must be numbers for this column") }
            cond = "\(ref) = ANY(\(arrayLiteral(texts))::float8[])"
        case .boolean:
            cond = "\(ref) = ANY(\(arrayLiteral(texts))::bool[])"
        default:
            cond = "\(ref)::text = ANY(\(arrayLiteral(texts))::text[])"
        }
        if hasNull { cond = "(\(cond) OR \(ref) IS NULL)" }
        return cond
    }

    static func bound(_ v: JSON, kind: ColumnKind, time: Bool) throws -> SQL {
        if kind == .timestamp || kind == .date || time {
            if let n = v.doubleValue { return "to_timestamp(\(n)::float8 / 1000)" }  // epoch milliseconds
            guard let s = v.stringValue else { throw invalid("time bounds must be epoch milliseconds or ISO dates") }
            return "\(s)::timestamptz"
        }
        if kind == .number {
            guard let t = text(v), Double(t) != nil else { throw invalid("range bounds must be numbers for this column") }
            return "\(t)::float8"
        }
        return "\(text(v))::text"
    }

    static func stringSearch(_ ref: SQL, _ values: [JSON], params: [String: JSON]) -> SQL {
        let regexp = params["useRegExp"]?.boolValue ?? false
        let caseSensitive = params["caseSensitive"]?.boolValue ?? false
        let mustStart = params["mustStart"]?.boolValue ?? false
        let mustEnd = params["mustEnd"]?.boolValue ?? false
        let conds = values.compactMap(text).map { value -> SQL in
            if regexp { return caseSensitive ? "\(ref)::text ~ \(value)" : "\(ref)::text ~* \(value)" }
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            let pattern = (mustStart ? "" : "%") + escaped + (mustEnd ? "" : "%")
            return caseSensitive ? "\(ref)::text LIKE \(pattern)" : "\(ref)::text ILIKE \(pattern)"
        }
        return conds.isEmpty ? "TRUE" : "(\(conds, joinedBy: " OR "))"
    }
}
