/// A table name as clients write it: `table`, `schema.table` or `database.schema.table`. Parsed here only,
/// with PostgreSQL's rules: a double-quoted part keeps its case, dots and doubled quotes (`""` is one `"`);
/// an unquoted part has its ASCII letters lower-cased; no part may be empty.
public struct QualifiedName: Sendable, Hashable, CustomStringConvertible {
    public var database: String?
    public var schema: String?
    public var table: String

    public init(database: String? = nil, schema: String? = nil, table: String) {
        self.database = database
        self.schema = schema
        self.table = table
    }

    /// `schema` when given, else PostgreSQL's default `public` (what grants and catalogue lookups compare).
    public var schemaOrPublic: String { schema ?? "public" }

    public init(parsing text: String) throws(SQLError) {
        var parts: [String] = []
        var current = ""
        var quoted = false, wasQuoted = false, closed = false
        var chars = Array(text.unicodeScalars)[...]
        func refuse(_ reason: String) -> SQLError { .invalidName(text, reason: reason) }
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { current.unicodeScalars.append("\""); chars.removeFirst() } else { quoted = false; closed = true }
                } else { current.unicodeScalars.append(c) }
            } else if c == "\"" {
                guard current.isEmpty, !wasQuoted else { throw refuse("a quoted part must be a whole name part") }
                quoted = true
                wasQuoted = true
            } else if c == "." {
                parts.append(wasQuoted ? current : Self.foldCase(current))
                current = ""
                wasQuoted = false
                closed = false
            } else {
                guard !closed else { throw refuse("a quoted part must be a whole name part") }
                current.unicodeScalars.append(c)
            }
        }
        guard !quoted else { throw refuse("unterminated quoted name") }
        parts.append(wasQuoted ? current : Self.foldCase(current))
        guard parts.count <= 3 else { throw refuse("a table name has at most three parts: database.schema.table") }
        guard parts.allSatisfy({ !$0.isEmpty }) else { throw refuse("a table name cannot have empty parts") }
        guard parts.allSatisfy({ !$0.utf8.contains(0) }) else { throw refuse("a table name cannot contain NUL characters") }
        table = parts[parts.count - 1]
        schema = parts.count >= 2 ? parts[parts.count - 2] : nil
        database = parts.count == 3 ? parts[0] : nil
    }

    /// PostgreSQL folds only ASCII letters of unquoted names (in a UTF-8 database), so `É` stays `É`.
    static func foldCase(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { ("A"..."Z").contains($0) ? Unicode.Scalar($0.value + 32)! : $0 }))
    }

    /// `"schema"."table"` (or `"table"`): the database part never reaches SQL, PostgreSQL has no
    /// cross-database references and the connection already chose the database.
    public var identifier: SQL {
        // Parsing refused NUL, so these cannot throw.
        let t = try! Identifier(table)
        guard let schema else { return "\(t)" }
        return "\(try! Identifier(schema)).\(t)"
    }

    /// The same with an explicit schema (`public` when none was written), for catalogue lookups.
    public var qualifiedIdentifier: SQL {
        "\(try! Identifier(schemaOrPublic)).\(try! Identifier(table))"
    }

    /// The name written back in the form `init(parsing:)` reads: parts quoted only when they need it.
    public var description: String {
        [database, schema, table].compactMap { $0 }.map { part in
            part.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
                && !(part.first?.isNumber ?? true) ? part : (try! Identifier(part)).quoted
        }.joined(separator: ".")
    }
}
