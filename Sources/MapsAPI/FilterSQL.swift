import Foundation
import HTTPKit
import Platform

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

    /// The condition for `filters` over columns of `alias`, or nil when there is none.
    static func condition(_ filters: JSON?, or: Bool, alias: String, schema: SourceSchema, builder b: inout SQLBuilder) throws -> String? {
        guard let columns = filters?.objectValue, !columns.isEmpty else { return nil }
        var clauses: [String] = []
        for column in columns.keys.sorted() {
            guard let kind = schema.kind(of: column) else { throw columnNotFound(column) }
            let ref = "\(alias).\(try b.quote(column))"
            var parts: [String] = []
            for (op, body) in columns[column]!.objectValue!.sorted(by: { $0.key < $1.key }) where op != "owner" {
                let values = body["values"]?.arrayValue ?? []
                switch op {
                case "in":
                    parts.append(try inList(ref, kind: kind, values, &b))
                case "between", "closed_open", "time":
                    let ranges = try values.map { pair -> String in
                        let bounds = pair.arrayValue!
                        var conds: [String] = []
                        if !bounds[0].isNull { conds.append("\(ref) >= \(try bound(bounds[0], kind: kind, time: op == "time", &b))") }
                        if !bounds[1].isNull {
                            conds.append("\(ref) \(op == "between" ? "<=" : "<") \(try bound(bounds[1], kind: kind, time: op == "time", &b))")
                        }
                        return conds.isEmpty ? "TRUE" : "(" + conds.joined(separator: " AND ") + ")"
                    }
                    parts.append(ranges.isEmpty ? "FALSE" : "(" + ranges.joined(separator: " OR ") + ")")
                case "stringSearch":
                    parts.append(try stringSearch(ref, values, params: body["params"]?.objectValue ?? [:], &b))
                default:
                    break
                }
            }
            if !parts.isEmpty { clauses.append(parts.joined(separator: " AND ")) }
        }
        guard !clauses.isEmpty else { return nil }
        return "(" + clauses.map { "(\($0))" }.joined(separator: or ? " OR " : " AND ") + ")"
    }

    static func text(_ v: JSON) -> String? {
        switch v {
        case .string(let s): return s
        case .number(let n): return n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .bool(let x): return x ? "true" : "false"
        default: return nil
        }
    }

    static func inList(_ ref: String, kind: ColumnKind, _ values: [JSON], _ b: inout SQLBuilder) throws -> String {
        let texts = values.compactMap(text)
        let hasNull = values.contains { $0.isNull }
        var cond: String
        switch kind {
        case .number:
            guard texts.allSatisfy({ Double($0) != nil }) else { throw invalid("in filter values must be numbers for this column") }
            cond = "\(ref) = ANY(\(b.bind(arrayLiteral(texts)))::float8[])"
        case .boolean:
            cond = "\(ref) = ANY(\(b.bind(arrayLiteral(texts)))::bool[])"
        default:
            cond = "\(ref)::text = ANY(\(b.bind(arrayLiteral(texts)))::text[])"
        }
        if hasNull { cond = "(\(cond) OR \(ref) IS NULL)" }
        return cond
    }

    static func bound(_ v: JSON, kind: ColumnKind, time: Bool, _ b: inout SQLBuilder) throws -> String {
        if kind == .timestamp || kind == .date || time {
            if let n = v.doubleValue { return "to_timestamp(\(b.bind(n))::float8 / 1000)" }  // epoch milliseconds
            guard let s = v.stringValue else { throw invalid("time bounds must be epoch milliseconds or ISO dates") }
            return "\(b.bind(s))::timestamptz"
        }
        if kind == .number {
            guard let t = text(v), Double(t) != nil else { throw invalid("range bounds must be numbers for this column") }
            return "\(b.bind(t))::float8"
        }
        return "\(b.bind(text(v)))::text"
    }

    static func stringSearch(_ ref: String, _ values: [JSON], params: [String: JSON], _ b: inout SQLBuilder) throws -> String {
        let regexp = params["useRegExp"]?.boolValue ?? false
        let caseSensitive = params["caseSensitive"]?.boolValue ?? false
        let mustStart = params["mustStart"]?.boolValue ?? false
        let mustEnd = params["mustEnd"]?.boolValue ?? false
        let conds = values.compactMap(text).map { value -> String in
            if regexp { return "\(ref)::text \(caseSensitive ? "~" : "~*") \(b.bind(value))" }
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            let pattern = (mustStart ? "" : "%") + escaped + (mustEnd ? "" : "%")
            return "\(ref)::text \(caseSensitive ? "LIKE" : "ILIKE") \(b.bind(pattern))"
        }
        return conds.isEmpty ? "TRUE" : "(" + conds.joined(separator: " OR ") + ")"
    }

    /// A PostgreSQL array literal with every element double-quoted and escaped.
    static func arrayLiteral(_ values: [String]) -> String {
        "{" + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}"
    }
}
