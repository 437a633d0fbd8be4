import Foundation

extension AggregationExpression {
    /// The expression with every unquoted mixed-case `AS alias` quoted, so the property keeps the case the
    /// client wrote: fetchMap's default `1 AS __aggregationValue` is read back as `__aggregationValue` (the
    /// client only changes case for Snowflake), while PostgreSQL folds unquoted names to lower case.
    /// Items are split on top-level commas (outside parentheses and quotes); anything else is left as written.
    static func preservingAliasCase(_ exp: String) -> String {
        var items: [String] = [], current = "", depth = 0, quote: Character? = nil
        for c in exp {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == "(" {
                depth += 1
            } else if c == ")" {
                depth -= 1
            } else if c == ",", depth == 0 {
                items.append(current)
                current = ""
                continue
            }
            current.append(c)
        }
        items.append(current)
        let alias = #"(?i)(\s+as\s+)([A-Za-z_][A-Za-z0-9_]*)(\s*)$"#
        return items.map { item -> String in
            guard let r = item.range(of: alias, options: .regularExpression) else { return item }
            let tail = String(item[r])
            guard let name = tail.range(of: #"[A-Za-z_][A-Za-z0-9_]*(?=\s*$)"#, options: .regularExpression),
                  tail[name] != tail[name].lowercased() else { return item }
            let head = String(item[..<r.lowerBound]) + String(tail[..<name.lowerBound])
            return head + "\"" + String(tail[name]) + "\"" + String(tail[name.upperBound...])
        }.joined(separator: ",")
    }
}
