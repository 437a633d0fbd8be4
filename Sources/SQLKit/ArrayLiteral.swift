/// A PostgreSQL array literal with every element double-quoted and escaped: the one way a list of values
/// goes to the server as a single bound parameter or a literal cast to an array type.
public func arrayLiteral(_ values: [String]) -> String {
    var out = "{"
    for (i, value) in values.enumerated() {
        if i > 0 { out.append(",") }
        out.append("\"")
        for c in value.unicodeScalars {
            if c == "\\" || c == "\"" { out.append("\\") }
            out.unicodeScalars.append(c)
        }
        out.append("\"")
    }
    out.append("}")
    return out
}
