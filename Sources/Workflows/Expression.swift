import HTTPKit
import SQLKit

/// A user's SQL expression (a filter, a computed column) checked to be ONE expression before it is spliced
/// into a compiled node: no statement separator, no comment that could hide the rest, balanced brackets,
/// no clause keyword outside brackets (so it cannot end the SELECT it sits in), no `$n` of its own and no
/// catalog-lookup casts. What the expression may call is the connection role's business, as in the SQL API.
/// `{{name}}` refers to a workflow variable and becomes a bound parameter.
public enum Expression {
    static let clauseKeywords: Set<String> = [
        "select", "insert", "update", "delete", "with", "from", "where", "group", "having", "order", "limit", "offset",
        "union", "intersect", "except", "into", "returning", "create", "drop", "alter", "grant", "revoke", "truncate",
        "copy", "do", "call", "set", "values", "window", "fetch", "for", "as", "on", "join", "lateral", "table",
    ]

    public struct Refusal: Error, Equatable { public let reason: String }

    /// The expression as SQL with its variables bound; throws `Refusal` naming what is wrong.
    public static func compile(_ text: String, variables: [String: JSON]) throws -> SQL {
        let chars = Array(text.unicodeScalars)
        guard chars.contains(where: { !$0.properties.isWhitespace }) else { throw Refusal(reason: "the expression is empty") }
        var out = SQL()
        var literal = ""
        var depth = 0
        var i = 0
        var word = ""
        func flushWord() throws {
            if depth == 0, clauseKeywords.contains(word.lowercased()) {
                throw Refusal(reason: "'\(word)' cannot appear in an expression (one expression, not a statement)")
            }
            word = ""
        }
        while i < chars.count {
            let c = chars[i]
            let next: Unicode.Scalar? = i + 1 < chars.count ? chars[i + 1] : nil
            if c.properties.isAlphabetic || c == "_" || (c.properties.numericType != nil && !word.isEmpty) {
                word.unicodeScalars.append(c); literal.unicodeScalars.append(c); i += 1; continue
            }
            let previousWord = word
            try flushWord()
            switch c {
            case "'":
                // A string literal; E'' strings may escape quotes with a backslash.
                let escapes = previousWord == "E" || previousWord == "e"
                literal.unicodeScalars.append(c); i += 1
                var closed = false
                while i < chars.count {
                    let s = chars[i]
                    literal.unicodeScalars.append(s); i += 1
                    if escapes, s == "\\", i < chars.count { literal.unicodeScalars.append(chars[i]); i += 1; continue }
                    if s == "'" {
                        if i < chars.count, chars[i] == "'" { literal.unicodeScalars.append("'"); i += 1; continue }
                        closed = true; break
                    }
                }
                guard closed else { throw Refusal(reason: "unterminated string literal") }
                continue
            case "\"":
                literal.unicodeScalars.append(c); i += 1
                var closed = false
                while i < chars.count {
                    let s = chars[i]
                    literal.unicodeScalars.append(s); i += 1
                    if s == "\"" {
                        if i < chars.count, chars[i] == "\"" { literal.unicodeScalars.append("\""); i += 1; continue }
                        closed = true; break
                    }
                }
                guard closed else { throw Refusal(reason: "unterminated quoted identifier") }
                continue
            case ";": throw Refusal(reason: "statement separators (;) are not allowed in an expression")
            case "-" where next == "-", "/" where next == "*": throw Refusal(reason: "comments are not allowed in an expression")
            case "$": throw Refusal(reason: "$ parameters and dollar quoting are not allowed; use a workflow variable {{name}}")
            case "\\": throw Refusal(reason: "backslashes are only allowed inside E'' strings")
            case "(", "[": depth += 1
            case ")", "]":
                depth -= 1
                guard depth >= 0 else { throw Refusal(reason: "unbalanced brackets") }
            case "{" where next == "{":
                var j = i + 2
                var name = ""
                while j < chars.count, chars[j] != "}" { name.unicodeScalars.append(chars[j]); j += 1 }
                name = name.trimmingWhitespace
                guard j + 1 < chars.count, chars[j + 1] == "}", let value = variables[name] else {
                    throw Refusal(reason: "unknown variable {{\(name)}}")
                }
                out.append(SQL(unsafeRaw: literal))
                literal = ""
                out.append(.bind(Self.text(value)))
                i = j + 2
                continue
            case "{", "}": throw Refusal(reason: "braces are only allowed around a variable {{name}}")
            default: break
            }
            literal.unicodeScalars.append(c)
            i += 1
        }
        try flushWord()
        guard depth == 0 else { throw Refusal(reason: "unbalanced brackets") }
        if PlanFunctions.namesCatalogObject(text) { throw Refusal(reason: "casts to catalog lookup types (regclass…) are not allowed") }
        out.append(SQL(unsafeRaw: literal))
        return out
    }

    /// A variable's value as bound text.
    static func text(_ value: JSON) -> String? {
        switch value {
        case .null: return nil
        case .string(let s): return s
        case .number(let n): return SQL.text(n)
        case .bool(let b): return b ? "true" : "false"
        default: return value.text
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
