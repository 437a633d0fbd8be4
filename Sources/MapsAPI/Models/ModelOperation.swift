import HTTPKit
import Platform
import SQLKit

/// The aggregations widgets ask for. `custom` carries client SQL (`operationExp`): any from users, and from API
/// access tokens what `OperationExpression` allows.
enum ModelOperation: String, Sendable {
    case count, avg, min, max, sum, custom

    /// `params.<key>`, defaulting to count; `custom` only where the model supports it.
    static func parse(_ text: String?, key: String = "operation", allowCustom: Bool = true) throws -> ModelOperation {
        guard let text, !text.isEmpty else { return .count }
        guard let op = ModelOperation(rawValue: text.lowercased()), allowCustom || op != .custom else {
            throw ModelParams.invalid("params.\(key) must be one of count, avg, min, max, sum\(allowCustom ? ", custom" : "")")
        }
        return op
    }
}

/// A per-row value: one column, or several combined with a join operation (CARTO's
/// `operationColumn: [...]` + `joinOperation`). `kind` drives which aggregations make sense.
struct ValueExpression {
    let sql: SQL
    let kind: ColumnKind
}

extension ModelSQL {
    /// A value from one column name or a list combined with `join` (sum by default); lists must be numeric.
    func value(_ columns: [String], join: ModelOperation?, key: String) throws -> ValueExpression {
        guard !columns.isEmpty else { throw ModelParams.invalid("Missing required parameter: params.\(key)") }
        if columns.count == 1 { return ValueExpression(sql: try ref(columns[0]), kind: try kind(columns[0])) }
        guard columns.count <= 100 else { throw ModelParams.invalid("params.\(key) lists too many columns") }
        var refs: [SQL] = []
        for c in columns {
            guard try kind(c) == .number else { throw ModelParams.invalid("params.\(key): \(c) is not a numeric column") }
            refs.append(try ref(c))
        }
        let list = SQL.join(refs, separator: ", ")
        let sum: SQL = "(\(refs.map { "coalesce(\($0), 0)" as SQL }, joinedBy: " + "))"
        switch join ?? .sum {
        case .sum: return ValueExpression(sql: "CASE WHEN num_nonnulls(\(list)) > 0 THEN \(sum) END", kind: .number)
        case .avg: return ValueExpression(sql: "(\(sum)::float8 / nullif(num_nonnulls(\(list)), 0))", kind: .number)
        case .min: return ValueExpression(sql: "LEAST(\(list))", kind: .number)
        case .max: return ValueExpression(sql: "GREATEST(\(list))", kind: .number)
        case .count: return ValueExpression(sql: "num_nonnulls(\(list))", kind: .number)
        case .custom: throw ModelParams.invalid("joinOperation must be one of count, avg, min, max, sum")
        }
    }

    /// `params.<key>` as a value: a column name or an array of names, with `params.<joinKey>`.
    func value(key: String, joinKey: String, default fallback: String? = nil) throws -> ValueExpression {
        let columns = try params.strings(key, max: 100) ?? fallback.map { [$0] } ?? []
        let join = try params.string(joinKey).map { try ModelOperation.parse($0, key: joinKey, allowCustom: false) }
        return try value(columns, join: join, key: key)
    }

    /// The SQL aggregate for `op` over `value`, as a JSON-friendly value: numbers stay numbers, dates and
    /// timestamps become epoch milliseconds (the unit of CARTO's time filters).
    func aggregate(_ op: ModelOperation, _ value: ValueExpression?, key: String = "column") throws -> SQL {
        switch op {
        case .count:
            return "count(*)"
        case .avg, .sum:
            guard let value else { throw ModelParams.invalid("Missing required parameter: params.\(key) (needed by \(op.rawValue))") }
            guard value.kind == .number else {
                throw ModelParams.invalid("Operation \(op.rawValue) needs a numeric column (params.\(key))")
            }
            return op == .avg ? "avg(\(value.sql))" : "sum(\(value.sql))"
        case .min, .max:
            guard let value else { throw ModelParams.invalid("Missing required parameter: params.\(key) (needed by \(op.rawValue))") }
            guard [.number, .date, .timestamp, .string].contains(value.kind) else {
                throw ModelParams.invalid("Operation \(op.rawValue) needs a numeric, date or text column (params.\(key))")
            }
            return Self.jsonScalar(op == .min ? "min(\(value.sql))" : "max(\(value.sql))", kind: value.kind)
        case .custom:
            guard let exp = try params.string("operationExp"), exp.utf8.contains(where: { $0 > 32 }) else {
                throw ModelParams.invalid("Missing required parameter: params.operationExp (operation custom)")
            }
            // API access tokens (public apps, fetchMap's map token): the scoped-SQL function allow-list, no subqueries.
            if !allowsRawSQL { try OperationExpression.validate(exp) }
            // Own line: a trailing `--` comment (users only) must not swallow the parenthesis.
            return SQL(unsafeRaw: "(\(exp)\n)")
        }
    }

    /// Dates and timestamps as epoch milliseconds; everything else unchanged.
    static func jsonScalar(_ sql: SQL, kind: ColumnKind) -> SQL {
        kind == .date || kind == .timestamp ? "(\(epochSeconds(sql, kind: kind)) * 1000)" : sql
    }

    /// Seconds since 1970-01-01 UTC: timestamptz as the instant, timestamp and date read as UTC wall time.
    /// (A date is cast to timestamp first: on PostgreSQL < 14 it would otherwise go through timestamptz
    /// and the session time zone.)
    static func epochSeconds(_ sql: SQL, kind: ColumnKind) -> SQL {
        kind == .date ? "extract(epoch FROM \(sql)::timestamp)::float8" : "extract(epoch FROM \(sql))::float8"
    }
}
