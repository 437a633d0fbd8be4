/// The first keyword of a statement, lowercased, past whitespace, comments and opening parentheses ("" when
/// there is none): enough to tell a COPY or a DO from a query before the server parses it.
public func leadingKeyword(_ sql: String) -> String {
    var rest = Substring(sql)
    while true {
        rest = rest.drop { $0.isWhitespace || $0 == "(" }
        if rest.hasPrefix("--") {
            rest = rest.drop { $0 != "\n" }
        } else if rest.hasPrefix("/*") {
            var i = rest.index(rest.startIndex, offsetBy: 2)
            while i < rest.endIndex, !rest[i...].hasPrefix("*/") { i = rest.index(after: i) }
            guard i < rest.endIndex else { return "" }
            rest = rest[rest.index(i, offsetBy: 2)...]
        } else {
            return rest.prefix { $0.isLetter }.lowercased()
        }
    }
}
