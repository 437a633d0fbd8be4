import HTTPKit
import OutboundHTTP
import SQLKit

/// A node's input as the compiler sees it: a relation (a materialised table, or a CTE name while the
/// API describes the graph) and its columns.
public struct NodeInput: Sendable {
    public struct Column: Sendable, Hashable {
        public let name: String
        /// `format_type` text: `bigint`, `text`, `geometry(Point,4326)`…
        public let type: String
        public init(name: String, type: String) { self.name = name; self.type = type }
        public var isGeometry: Bool { type.hasPrefix("geometry") }
    }

    public let relation: SQL
    public let columns: [Column]
    public init(relation: SQL, columns: [Column]) { self.relation = relation; self.columns = columns }

    public func column(_ name: String) -> Column? { columns.first { $0.name == name } }
}

/// Compiles one node to one SELECT over its inputs: identifiers quoted, values bound, user expressions
/// checked by `Expression`. Pure: the same node and inputs always give the same SQL value (its text and
/// parameters are what the runner hashes to reuse results). Column parameters are checked against the
/// inputs' columns, so a typo is a 400 naming the node and parameter, not a database error mid-run.
public struct Compiler {
    public let node: WorkflowDocument.Node
    public let inputs: [String: NodeInput]
    public let variables: [String: JSON]

    public init(node: WorkflowDocument.Node, inputs: [String: NodeInput], variables: [String: JSON]) {
        self.node = node
        self.inputs = inputs
        self.variables = variables
    }

    public static let filterOperators = ["=", "!=", "<", "<=", ">", ">=", "like", "ilike", "is_null", "is_not_null", "in"]

    public func compile() throws -> SQL {
        if let reason = ComponentCatalog.unavailable[node.type] {
            throw WorkflowError.invalid("\(node.type) is not available in workflows yet: \(reason)", node: node.id, parameter: "type")
        }
        switch node.component.category {
        case .input where node.type == "import_url":
            // Loaded by the runner (WorkflowRunner+ImportURL); this SELECT names what is loaded, so the node's
            // table hash (its cache key) is the URL. The address itself is checked when the run downloads.
            let url = try requiredString("url")
            do { _ = try URLGuard.parse(url) } catch let e as URLRefused { throw fail(e.message, "url") }
            return "SELECT CAST(\(url) AS text) AS \"url\""
        case .input, .preparation: return try preparation()
        case .spatial: return try spatial()
        case .indexes: return try indexes()
        case .location: return try location()
        case .statistics: return try statistics()
        case .output:
            if node.type == "http_request" {
                // The address is checked when the run posts (DNS may change); a malformed URL is refused now.
                do { _ = try URLGuard.parse(try requiredString("url")) } catch let e as URLRefused { throw fail(e.message, "url") }
            }
            return "SELECT * FROM \(try input().relation)"
        }
    }

    // MARK: parameters

    func fail(_ message: String, _ parameter: String? = nil) -> APIError {
        WorkflowError.invalid(message, node: node.id, parameter: parameter)
    }

    /// A parameter's value with `{{variable}}` (the whole value) replaced by the variable's value.
    func value(_ name: String) -> JSON? {
        var v = node.params[name] ?? node.component.param(name)?.defaultValue
        if case .string(let s)? = v, s.hasPrefix("{{"), s.hasSuffix("}}") {
            v = variables[String(s.dropFirst(2).dropLast(2)).trimmingWhitespace]
        }
        return v.flatMap { $0.isNull ? nil : $0 }
    }

    func string(_ name: String) throws -> String? {
        guard let v = value(name) else { return nil }
        guard let s = v.stringValue ?? v.doubleValue.map(SQL.text) else { throw fail("must be a string", name) }
        return s
    }

    func requiredString(_ name: String) throws -> String {
        guard let s = try string(name), !s.isEmpty else { throw fail("is required", name) }
        return s
    }

    func number(_ name: String) throws -> Double? {
        guard let v = value(name) else { return nil }
        guard let n = v.doubleValue ?? v.stringValue.flatMap(Double.init), n.isFinite else { throw fail("must be a number", name) }
        return n
    }

    func requiredNumber(_ name: String, min: Double? = nil, max: Double? = nil) throws -> Double {
        guard let n = try number(name) else { throw fail("is required", name) }
        if let min, n < min { throw fail("must be at least \(SQL.text(min))", name) }
        if let max, n > max { throw fail("must be at most \(SQL.text(max))", name) }
        return n
    }

    func integer(_ name: String, min: Int, max: Int) throws -> Int? {
        guard let n = try number(name) else { return nil }
        guard n.rounded() == n, n >= Double(min), n <= Double(max) else { throw fail("must be an integer from \(min) to \(max)", name) }
        return Int(n)
    }

    func requiredInteger(_ name: String, min: Int, max: Int) throws -> Int {
        guard let n = try integer(name, min: min, max: max) else { throw fail("is required", name) }
        return n
    }

    func choice(_ name: String) throws -> String {
        let options = node.component.param(name)?.options ?? []
        guard let s = try string(name), options.contains(s) else {
            throw fail("must be one of \(options.joined(separator: ", "))", name)
        }
        return s
    }

    func input(_ port: String? = nil) throws -> NodeInput {
        let port = port ?? node.component.inputs.first ?? "in"
        guard let i = inputs[port] else { throw fail("input \(port) is not connected", port) }
        return i
    }

    /// A column parameter checked against the input's columns.
    func column(_ name: String, of port: String? = nil, required: Bool = true) throws -> Identifier? {
        guard let c = try string(name), !c.isEmpty else {
            if required { throw fail("is required", name) }
            return nil
        }
        guard try input(port).column(c) != nil else { throw fail("unknown column \(c)", name) }
        return try Identifier(c)
    }

    func columnList(_ name: String, of port: String? = nil) throws -> [Identifier] {
        guard let v = value(name) else { return [] }
        let names: [String]
        if let s = v.stringValue { names = s.split(separator: ",").map { String($0).trimmingWhitespace } } else {
            guard let a = v.arrayValue, a.allSatisfy({ $0.stringValue != nil }) else { throw fail("must be a list of column names", name) }
            names = a.compactMap(\.stringValue)
        }
        let i = try input(port)
        return try names.map { c in
            guard i.column(c) != nil else { throw fail("unknown column \(c)", name) }
            return try Identifier(c)
        }
    }

    /// The geometry column a spatial parameter names (default: the input's first geometry column); a
    /// column of another type is a type mismatch.
    func geometry(_ name: String = "geom", of port: String? = nil) throws -> Identifier {
        let i = try input(port)
        if let c = try string(name), !c.isEmpty {
            guard let column = i.column(c) else { throw fail("unknown column \(c)", name) }
            guard column.isGeometry else { throw fail("column \(c) is \(column.type), a geometry is expected", name) }
            return try Identifier(c)
        }
        guard let first = i.columns.first(where: \.isGeometry) else {
            throw fail("the input \(port ?? node.component.inputs.first ?? "in") has no geometry column; a geometry is expected", name)
        }
        return try Identifier(first.name)
    }

    func expression(_ name: String) throws -> SQL {
        let text = try requiredString(name)
        do { return try Expression.compile(text, variables: variables) } catch let error as Expression.Refusal { throw fail(error.reason, name) }
    }

    func newName(_ name: String) throws -> Identifier {
        let s = try requiredString(name)
        guard s.count <= 63 else { throw fail("a column name has at most 63 characters", name) }
        return try Identifier(s)
    }

    /// A number bound with an explicit type, so overloaded PostGIS functions resolve without guessing.
    static func float(_ value: Double) -> SQL { "CAST(\(value) AS float8)" }

    // MARK: column lists

    /// `alias."a", alias."b"` for every column of `input` except `excluding`.
    static func columns(_ input: NodeInput, alias: String, excluding: Set<String> = []) -> SQL {
        let a = try! Identifier(alias)
        let list = input.columns.filter { !excluding.contains($0.name) }.map { c -> SQL in "\(a).\(try! Identifier(c.name))" }
        return SQL.join(list, separator: ", ")
    }

    /// The secondary input's columns, renamed `<name>_2` where they collide with the main input's (or with `taken`).
    static func secondaryColumns(_ secondary: NodeInput, alias: String, main: NodeInput, taken: Set<String> = []) -> SQL {
        let a = try! Identifier(alias)
        var used = Set(main.columns.map(\.name)).union(taken)
        let list = secondary.columns.map { c -> SQL in
            var name = c.name
            var n = 2
            while used.contains(name) { name = "\(c.name)_\(n)"; n += 1 }
            used.insert(name)
            return name == c.name ? "\(a).\(try! Identifier(c.name))" : "\(a).\(try! Identifier(c.name)) AS \(try! Identifier(name))"
        }
        return SQL.join(list, separator: ", ")
    }

    /// Aggregates `[{column, op, alias}]`; `column` may be omitted for count.
    static let aggregateOps = ["count", "count_distinct", "sum", "avg", "min", "max", "union", "collect"]

    func aggregates(_ name: String, of port: String? = nil, alias: String? = nil, required: Bool) throws -> [SQL] {
        guard let v = value(name) else {
            if required { throw fail("is required", name) }
            return []
        }
        guard let list = v.arrayValue, !list.isEmpty || !required else { throw fail("must be a non-empty list of {column, op, alias}", name) }
        let i = try input(port)
        let prefix = alias.map { "\(try! Identifier($0).quoted)." } ?? ""
        return try list.map { a in
            guard let op = a["op"]?.stringValue, Self.aggregateOps.contains(op) else {
                throw fail("op must be one of \(Self.aggregateOps.joined(separator: ", "))", name)
            }
            let columnName = a["column"]?.stringValue
            if let columnName, i.column(columnName) == nil { throw fail("unknown column \(columnName)", name) }
            guard columnName != nil || op == "count" else { throw fail("\(op) needs a column", name) }
            let out = a["alias"]?.stringValue ?? (columnName.map { "\($0)_\(op)" } ?? "count")
            guard !out.isEmpty, out.count <= 63 else { throw fail("alias must be 1-63 characters", name) }
            let c = columnName.map { SQL(unsafeRaw: prefix + (try! Identifier($0)).quoted) }
            let f: SQL
            switch op {
            case "count": f = c.map { "count(\($0))" } ?? "count(*)"
            case "count_distinct": f = "count(DISTINCT \(c!))"
            case "union": f = "ST_Union(\(c!))"
            case "collect": f = "ST_Collect(\(c!))"
            default: f = "\(unsafeRaw: op)(\(c!))"
            }
            return "\(f) AS \(try Identifier(out))"
        }
    }
}
