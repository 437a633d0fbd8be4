import Foundation
import HTTPKit
import SQLKit

/// A formula widget's `operationExp` (operation `custom`) from an API access token: the token's grant covers
/// the source's rows, so the expression may compute anything over them with the functions scoped SQL may
/// call (`PlanFunctions`), but must not reach other rows: no subquery, no statement separator, no comment or
/// dollar quoting that could hide one. Lexical, and strict: what is refused says why.
enum OperationExpression {
    static func validate(_ exp: String) throws {
        // Anywhere, literals included: in an E'' string a backslash escapes the quote, so the literal would end
        // elsewhere than this scanner thinks.
        if exp.contains("\\") { throw refused("backslashes are not allowed") }
        var words: [String] = []
        var text = ""  // the expression without string literals and quoted identifiers
        let chars = Array(exp.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "'" || c == "\"" {
                // A literal or quoted identifier: skipped to its (doubled-quote aware) end.
                var j = i + 1
                while j < chars.count {
                    if chars[j] == c {
                        if j + 1 < chars.count, chars[j + 1] == c { j += 2; continue }
                        break
                    }
                    j += 1
                }
                guard j < chars.count else { throw refused("it has an unterminated quote") }
                text += " _ "
                i = j + 1
                continue
            }
            if c == ";" { throw refused("it contains ';'") }
            if c == "$" { throw refused("dollar quoting and parameters are not allowed") }
            if c == "-" && i + 1 < chars.count && chars[i + 1] == "-" { throw refused("comments are not allowed") }
            if c == "/" && i + 1 < chars.count && chars[i + 1] == "*" { throw refused("comments are not allowed") }
            text.unicodeScalars.append(c)
            i += 1
        }
        var word = ""
        for c in text.unicodeScalars {
            if c.properties.isAlphabetic || c == "_" || ("0"..."9").contains(c) { word.unicodeScalars.append(c) } else {
                if !word.isEmpty { words.append(word.lowercased()) }
                word = ""
            }
        }
        if !word.isEmpty { words.append(word.lowercased()) }
        // Every subquery starts with one of these; as bare words they have no other use in an expression.
        if let w = words.first(where: { ["select", "values", "table", "lateral", "union", "returning"].contains($0) }) {
            throw refused("subqueries are not allowed ('\(w)')")
        }
        if text.range(of: #"\(\s*with\b"#, options: [.regularExpression, .caseInsensitive]) != nil {
            throw refused("subqueries are not allowed ('with')")
        }
        if let call = PlanFunctions.functionNames(in: exp).first(where: { !PlanFunctions.isAllowed($0) }) {
            throw refused("function \(call) is not on the allow-list of functions API access tokens may call")
        }
    }

    static func refused(_ why: String) -> APIError {
        APIError.forbidden("operationExp is refused for API access tokens: \(why)", code: "custom_operation_forbidden")
    }
}
