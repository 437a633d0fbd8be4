import HTTPKit
import Platform
import SQLKit

/// formula, range, histogram, category and aggregations: one aggregate statement each.
extension ModelSQL {
    static let maxTicks = 1000
    static let maxAggregations = 50

    /// `{rows: [{value}]}`: `operation` over `column` (count counts rows; `*` only with count).
    func formula() throws -> ModelQuery {
        let op = try ModelOperation.parse(params.string("operation"))
        let column = try params.string("column") ?? "*"
        let value = column == "*" || column.isEmpty ? nil : ValueExpression(sql: try ref(column), kind: try kind(column))
        let agg = try aggregate(op, value)
        let sql: SQL = "SELECT json_build_object('value', \(agg))::text FROM \(source())"
        return ModelQuery(sql: sql) { row in ["rows": .array(row.isEmpty ? [["value": .null]] : [row[0]])] }
    }

    /// `{rows: [{min, max}]}` of a numeric, date or timestamp column (times as epoch milliseconds).
    func range() throws -> ModelQuery {
        let column = try params.requiredString("column")
        let columnKind = try kind(column)
        guard [.number, .date, .timestamp].contains(columnKind) else {
            throw ModelParams.invalid("range needs a numeric, date or timestamp column (params.column)")
        }
        let c = try ref(column)
        let sql: SQL = """
            SELECT json_build_object('min', \(Self.jsonScalar("min(\(c))", kind: columnKind)), 'max', \(Self.jsonScalar("max(\(c))", kind: columnKind)))::text
            FROM \(source())
            """
        return ModelQuery(sql: sql) { row in ["rows": .array(row.isEmpty ? [] : [row[0]])] }
    }

    /// `{rows: [{tick, value}]}`: bin 0 holds values below ticks[0], bin i values in [ticks[i-1], ticks[i]),
    /// bin N values ≥ the last tick. Empty bins are omitted (the client fills zeros).
    func histogram() throws -> ModelQuery {
        let column = try params.requiredString("column")
        guard try kind(column) == .number else { throw ModelParams.invalid("histogram needs a numeric column (params.column)") }
        guard let ticks = try params.numbers("ticks", max: Self.maxTicks) else {
            throw ModelParams.invalid("Missing required parameter: params.ticks")
        }
        guard zip(ticks, ticks.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw ModelParams.invalid("params.ticks must be in ascending order")
        }
        let op = try ModelOperation.parse(params.string("operation"))
        let c = try ref(column)
        let agg = try aggregate(op, ValueExpression(sql: c, kind: .number))
        let bins = arrayLiteral(ticks.map { FilterSQL.text(.number($0)) ?? "0" })
        let sql: SQL = """
            SELECT coalesce(json_agg(json_build_object('tick', tick, 'value', value) ORDER BY tick), '[]')::text FROM (
              SELECT width_bucket(\(c)::float8, \(bins)::float8[]) AS tick, \(agg) AS value
              FROM \(source(["\(c) IS NOT NULL"])) GROUP BY 1
            ) _h
            """
        return ModelQuery(sql: sql) { row in ["rows": row.first ?? []] }
    }

    /// `{rows: [{name, value}], metadata?: {others}}`: categories of `column` with `operation` over
    /// `operationColumn`, ordered by `orderBy`. With `othersThreshold` N only the first N are listed and
    /// `metadata.others` aggregates the rest.
    func category() throws -> ModelQuery {
        let column = try params.requiredString("column")
        guard ![.geometry, .json].contains(try kind(column)) else {
            throw ModelParams.invalid("category needs a column of plain values (params.column)")
        }
        let op = try ModelOperation.parse(params.string("operation"))
        let value = op == .count || op == .custom ? nil : try self.value(key: "operationColumn", joinKey: "joinOperation", default: column)
        let agg = try aggregate(op, value, key: "operationColumn")
        let threshold = try params.int("othersThreshold", default: 0, min: 0, cap: Self.maxRows)
        let order: SQL
        switch try params.string("orderBy") ?? "frequency_desc" {
        case "frequency_desc": order = "value DESC NULLS LAST, name ASC NULLS LAST"
        case "frequency_asc": order = "value ASC NULLS LAST, name ASC NULLS LAST"
        case "alphabetical_asc": order = "name ASC NULLS LAST, value DESC NULLS LAST"
        case "alphabetical_desc": order = "name DESC NULLS LAST, value DESC NULLS LAST"
        default: throw ModelParams.invalid("params.orderBy must be frequency_desc, frequency_asc, alphabetical_asc or alphabetical_desc")
        }
        let c = try ref(column)
        let limit: SQL = "\(threshold > 0 ? threshold : Self.maxRows)"
        var others: SQL = ""
        if threshold > 0 {
            others = """
                ,
                  (SELECT to_json(\(agg)) FROM \(source(["NOT EXISTS (SELECT 1 FROM _r WHERE _r._rn <= \(limit) AND _r.name IS NOT DISTINCT FROM \(c))"])))::text
                """
        }
        let sql: SQL = """
            WITH _g AS (SELECT \(c) AS name, \(agg) AS value FROM \(source()) GROUP BY 1),
                 _r AS (SELECT name, value, row_number() OVER (ORDER BY \(order)) AS _rn FROM _g)
            SELECT (SELECT coalesce(json_agg(json_build_object('name', name, 'value', value) ORDER BY _rn), '[]')
                    FROM _r WHERE _rn <= \(limit))::text\(others)
            """
        return ModelQuery(sql: sql) { row in
            var body: [String: JSON] = ["rows": row.first ?? []]
            if threshold > 0 { body["metadata"] = ["others": row.count > 1 ? row[1] : .null] }
            return .object(body)
        }
    }

    /// `{rows: [{<alias>: value, …}]}` from `aggregations: [{column, operation, alias}]`. The SQL-string
    /// form runs verbatim for users; for API access tokens it must be a list of
    /// `<count|sum|avg|min|max>(<column>|*) [AS] <alias>` and is rebuilt from that parse.
    func aggregations() throws -> ModelQuery {
        guard let spec = params.values["aggregations"], !spec.isNull else {
            throw ModelParams.invalid("Missing required parameter: params.aggregations")
        }
        var items: [(column: String, op: ModelOperation, alias: String?)] = []
        if let text = spec.stringValue {
            guard text.utf8.contains(where: { $0 > 32 }), text.utf8.count <= 8192, !text.contains("\0") else {
                throw ModelParams.invalid("params.aggregations is empty or too long")
            }
            if allowsRawSQL {
                // The user's own select list, run as written (users may run any SQL on their connections).
                let sql: SQL = """
                    SELECT coalesce(json_agg(_t), '[]')::text FROM (SELECT \(SQL(unsafeRaw: text))
                    FROM \(source()) LIMIT \(literal: Self.maxRows)) _t
                    """
                return ModelQuery(sql: sql) { row in ["rows": row.first ?? []] }
            }
            guard let parsed = AggregationList.parse(text) else {
                throw APIError.forbidden("API access tokens may only send aggregations as <count|sum|avg|min|max>(<column>) AS <alias> items",
                                         code: "custom_operation_forbidden")
            }
            items = parsed
        } else {
            guard let list = spec.arrayValue, !list.isEmpty else {
                throw ModelParams.invalid("params.aggregations must be a non-empty array of {column, operation, alias}")
            }
            for item in list {
                guard let column = item["column"]?.stringValue, let opText = item["operation"]?.stringValue,
                      item["alias"].map({ $0.isNull || $0.stringValue != nil }) ?? true else {
                    throw ModelParams.invalid("params.aggregations items need string column and operation (and an optional alias)")
                }
                let op = try ModelOperation.parse(opText, key: "aggregations[].operation", allowCustom: false)
                items.append((column, op, item["alias"]?.stringValue))
            }
        }
        guard items.count <= Self.maxAggregations else { throw ModelParams.invalid("At most \(Self.maxAggregations) aggregations per request") }
        var pairs: [SQL] = []
        for item in items {
            let alias = item.alias.flatMap { $0.isEmpty ? nil : $0 } ?? (item.column == "*" ? item.op.rawValue : "\(item.op.rawValue)_\(item.column)")
            guard alias.utf8.count <= 256 else { throw ModelParams.invalid("Aggregation alias is too long") }
            let sql: SQL
            if item.column == "*" {
                guard item.op == .count else { throw ModelParams.invalid("Only count accepts column *") }
                sql = "count(*)"
            } else if item.op == .count {
                sql = "count(\(try ref(item.column)))"
            } else {
                sql = try aggregate(item.op, ValueExpression(sql: try ref(item.column), kind: try kind(item.column)), key: "aggregations[].column")
            }
            pairs.append("\(alias)::text, \(sql)")
        }
        let sql: SQL = "SELECT json_build_object(\(pairs, joinedBy: ", "))::text FROM \(source())"
        return ModelQuery(sql: sql) { row in ["rows": .array(row.isEmpty ? [] : [row[0]])] }
    }
}

/// Parses `count(*) AS n, sum("Pop") total` — nothing else: no expressions, casts or nested calls.
/// Unquoted identifiers fold to lower case as PostgreSQL does.
enum AggregationList {
    enum Token: Equatable { case word(String), quoted(String), open, close, star, comma }

    static func parse(_ text: String) -> [(column: String, op: ModelOperation, alias: String?)]? {
        guard let tokens = tokenize(text) else { return nil }
        var items: [(column: String, op: ModelOperation, alias: String?)] = []
        var i = 0
        while i < tokens.count {
            guard i + 3 < tokens.count, case .word(let name) = tokens[i], let op = ModelOperation(rawValue: name), op != .custom,
                  tokens[i + 1] == .open, tokens[i + 3] == .close else { return nil }
            let column: String
            switch tokens[i + 2] {
            case .star: column = "*"
            case .word(let w): column = w
            case .quoted(let q): column = q
            default: return nil
            }
            i += 4
            var alias: String?
            if i < tokens.count, case .word("as") = tokens[i] { i += 1 }
            if i < tokens.count {
                switch tokens[i] {
                case .word(let w): alias = w; i += 1
                case .quoted(let q): alias = q; i += 1
                default: break
                }
            }
            items.append((column, op, alias))
            if i < tokens.count {
                guard tokens[i] == .comma, i + 1 < tokens.count else { return nil }
                i += 1
            }
        }
        return items.isEmpty ? nil : items
    }

    static func tokenize(_ text: String) -> [Token]? {
        var tokens: [Token] = []
        let chars = Array(text.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.properties.isWhitespace { i += 1; continue }
            switch c {
            case "(": tokens.append(.open); i += 1
            case ")": tokens.append(.close); i += 1
            case "*": tokens.append(.star); i += 1
            case ",": tokens.append(.comma); i += 1
            case "\"":
                var s = String.UnicodeScalarView()
                i += 1
                var closed = false
                while i < chars.count {
                    if chars[i] == "\"" {
                        if i + 1 < chars.count, chars[i + 1] == "\"" { s.append("\""); i += 2; continue }
                        closed = true
                        i += 1
                        break
                    }
                    s.append(chars[i])
                    i += 1
                }
                guard closed, !s.isEmpty else { return nil }
                tokens.append(.quoted(String(s)))
            default:
                guard c.properties.isAlphabetic || c == "_" else { return nil }
                var s = String.UnicodeScalarView()
                while i < chars.count, chars[i].properties.isAlphabetic || chars[i] == "_" || ("0"..."9").contains(chars[i]) {
                    s.append(chars[i])
                    i += 1
                }
                tokens.append(.word(String(s).lowercased()))
            }
        }
        return tokens
    }
}
