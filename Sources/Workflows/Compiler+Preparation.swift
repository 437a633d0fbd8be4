import HTTPKit
import SQLKit

extension Compiler {
    func preparation() throws -> SQL {
        switch node.type {
        case "table":
            let text = try requiredString("table")
            let name: QualifiedName
            do { name = try QualifiedName(parsing: text) } catch { throw fail(error.description, "table") }
            return "SELECT * FROM \(name.qualifiedIdentifier)"
        case "sql":
            let text = try requiredString("query")
            try Self.checkQuery(text, node: node.id)
            return "SELECT * FROM (\(unsafeRaw: text)\n) q"
        case "select":
            let cols = try columnList("columns")
            guard !cols.isEmpty else { throw fail("choose at least one column", "columns") }
            return "SELECT \(cols.map { "\($0)" as SQL }, joinedBy: ", ") FROM \(try input().relation)"
        case "filter": return "SELECT * FROM \(try input().relation) t WHERE \(try condition())"
        case "rename":
            guard let mapping = value("columns")?.objectValue, !mapping.isEmpty else { throw fail("must be an object of old: new names", "columns") }
            let i = try input()
            for old in mapping.keys.sorted() where i.column(old) == nil { throw fail("unknown column \(old)", "columns") }
            let list = try i.columns.map { c -> SQL in
                guard let new = mapping[c.name] else { return "\(try Identifier(c.name))" }
                guard let s = new.stringValue, !s.isEmpty, s.count <= 63 else { throw fail("new names must be 1-63 characters", "columns") }
                return "\(try Identifier(c.name)) AS \(try Identifier(s))"
            }
            return "SELECT \(list, joinedBy: ", ") FROM \(i.relation)"
        case "add_column":
            let name = try newName("name")
            let i = try input()
            return "SELECT \(Self.columns(i, alias: "t", excluding: [name.name])), (\(try expression("expression"))) AS \(name) FROM \(i.relation) t"
        case "join":
            let main = try input("main"), secondary = try input("secondary")
            let left = try column("left_key", of: "main")!, right = try column("right_key", of: "secondary")!
            let type: SQL = try choice("join_type") == "left" ? "LEFT JOIN" : "JOIN"
            return """
                SELECT \(Self.columns(main, alias: "a")), \(Self.secondaryColumns(secondary, alias: "b", main: main))
                FROM \(main.relation) a \(type) \(secondary.relation) b ON a.\(left) = b.\(right)
                """
        case "union":
            let main = try input("main"), secondary = try input("secondary")
            guard Set(main.columns.map(\.name)) == Set(secondary.columns.map(\.name)) else {
                throw fail("both inputs need the same columns (main: \(main.columns.map(\.name).joined(separator: ", ")); "
                           + "secondary: \(secondary.columns.map(\.name).joined(separator: ", ")))", "secondary")
            }
            let all: SQL = value("all")?.boolValue == false ? "UNION" : "UNION ALL"
            return "SELECT \(Self.columns(main, alias: "a")) FROM \(main.relation) a \(all) SELECT \(Self.columns(main, alias: "b")) FROM \(secondary.relation) b"
        case "group_by":
            let keys = try columnList("columns")
            let aggs = try aggregates("aggregates", required: true)
            let select = keys.map { "\($0)" as SQL } + aggs
            let groupBy: SQL = keys.isEmpty ? "" : " GROUP BY \(keys.map { "\($0)" as SQL }, joinedBy: ", ")"
            return "SELECT \(select, joinedBy: ", ") FROM \(try input().relation)\(groupBy)"
        case "order_limit":
            var sql: SQL = "SELECT * FROM \(try input().relation)"
            if let order = value("order_by") {
                guard let list = order.arrayValue else { throw fail("must be a list of {column, direction}", "order_by") }
                let terms = try list.map { o -> SQL in
                    guard let c = o["column"]?.stringValue, try input().column(c) != nil else {
                        throw fail("unknown column \(o["column"]?.text ?? "null")", "order_by")
                    }
                    let dir = o["direction"]?.stringValue?.lowercased() ?? "asc"
                    guard dir == "asc" || dir == "desc" else { throw fail("direction must be asc or desc", "order_by") }
                    return "\(try Identifier(c)) \(unsafeRaw: dir == "desc" ? "DESC NULLS LAST" : "ASC NULLS LAST")"
                }
                if !terms.isEmpty { sql += " ORDER BY \(terms, joinedBy: ", ")" }
            }
            if let limit = try integer("limit", min: 0, max: 1_000_000_000) { sql += " LIMIT \(literal: limit)" }
            return sql
        case "sample":
            // Deterministic for a seed (hash of the row), so reruns and cached results agree.
            let percent = try requiredNumber("percent", min: 0, max: 100)
            let seed = try integer("seed", min: Int(Int32.min), max: Int(Int32.max)) ?? 0
            return "SELECT * FROM \(try input().relation) t WHERE (abs(hashtext(t::text || \(seed)::text)::bigint) % 1000000) < \(Self.float(percent)) * 10000"
        case "distinct":
            let cols = try columnList("columns")
            let i = try input()
            if cols.isEmpty { return "SELECT DISTINCT * FROM \(i.relation)" }
            return "SELECT DISTINCT ON (\(cols.map { "\($0)" as SQL }, joinedBy: ", ")) * FROM \(i.relation)"
        default: throw fail("cannot be compiled", "type")
        }
    }

    /// The filter's condition: the raw expression, or column/operator/value with the value bound.
    func condition() throws -> SQL {
        if value("expression") != nil { return "(\(try expression("expression")))" }
        guard let c = try column("column", required: false) else { throw fail("give column/operator/value or expression", "column") }
        let op = try choice("operator")
        let col: SQL = "t.\(c)"
        switch op {
        case "is_null": return "\(col) IS NULL"
        case "is_not_null": return "\(col) IS NOT NULL"
        case "in":
            let items: [String]
            if let a = value("value")?.arrayValue { items = a.compactMap { $0.stringValue ?? $0.doubleValue.map(SQL.text) } } else {
                items = (try string("value") ?? "").split(separator: ",").map { String($0).trimmingWhitespace }
            }
            let list = SQL.join(items.map { SQL.bind($0) }, separator: ", ")
            return "\(col)::text IN (\(list))"
        default:
            guard let v = value("value") else { throw fail("is required for \(op)", "value") }
            let bound = SQL.bind(Expression.text(v))
            let sqlOp: String = ["like": "LIKE", "ilike": "ILIKE"][op] ?? op
            let typeName = try input().column(c.name)?.type ?? "text"
            // The value is bound as text and cast to the column's type, so `population > '1000000'` compares numbers.
            if op == "like" || op == "ilike" { return "\(col)::text \(unsafeRaw: sqlOp) \(bound)" }
            return "\(col) \(unsafeRaw: sqlOp) CAST(\(bound) AS \(unsafeRaw: Self.castType(typeName)))"
        }
    }

    /// A type name safe to splice into a CAST: format_type output reduced to letters, digits, spaces and
    /// brackets (it came from the catalogue, but it is still text).
    static func castType(_ formatted: String) -> String {
        let base = formatted.hasPrefix("geometry") ? "geometry" : formatted
        let safe = base.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil || " ()_,[]".unicodeScalars.contains($0) }
        return safe ? base : "text"
    }

    /// A `sql` node's query: one statement starting with SELECT/WITH/VALUES/TABLE, no separator.
    static func checkQuery(_ text: String, node: String) throws {
        // The expression lexer knows strings and quoted names; a whole query is an expression in brackets.
        let body = text.trimmingWhitespace
        let first = body.prefix { $0.isLetter }.lowercased()
        guard ["select", "with", "values", "table"].contains(first) else {
            throw WorkflowError.invalid("must be one SELECT (or WITH/VALUES/TABLE) query", node: node, parameter: "query")
        }
        do { _ = try Expression.compile("(" + body + ")", variables: [:]) } catch let error as Expression.Refusal {
            if !error.reason.hasPrefix("unknown variable") {
                throw WorkflowError.invalid(error.reason, node: node, parameter: "query")
            }
        }
    }
}
