/// Renumbers (or replaces) `$n` parameter references in SQL text, skipping what PostgreSQL's lexer would not read as
/// a parameter: string constants ('…', E'…' with backslash escapes), quoted identifiers, dollar-quoted
/// strings, comments, and `$` inside an identifier (`a$1`).
enum Placeholders {
    static func shift(_ text: String, by offset: Int) -> String {
        guard offset != 0 else { return text }
        return rewrite(text) { "$\($0 + offset)" }
    }

    /// The text with each parameter reference `$n` replaced by `replacement(n)`.
    static func rewrite(_ text: String, _ replacement: (Int) -> String) -> String {
        guard text.utf8.contains(UInt8(ascii: "$")) else { return text }
        let b = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count + 8)
        var i = 0
        func isIdent(_ c: UInt8) -> Bool {
            (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x24 || c >= 0x80
        }
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        func copy(to end: Int) { out += b[i..<min(end, b.count)]; i = min(end, b.count) }
        while i < b.count {
            let c = b[i]
            switch c {
            case UInt8(ascii: "'"):
                let escapes = i > 0 && (b[i - 1] == UInt8(ascii: "E") || b[i - 1] == UInt8(ascii: "e"))
                    && (i < 2 || !isIdent(b[i - 2]))
                var j = i + 1
                while j < b.count {
                    if escapes, b[j] == UInt8(ascii: "\\") { j += 2; continue }
                    if b[j] == UInt8(ascii: "'") {
                        if j + 1 < b.count, b[j + 1] == UInt8(ascii: "'") { j += 2; continue }
                        break
                    }
                    j += 1
                }
                copy(to: j + 1)
            case UInt8(ascii: "\""):
                var j = i + 1
                while j < b.count {
                    if b[j] == UInt8(ascii: "\"") {
                        if j + 1 < b.count, b[j + 1] == UInt8(ascii: "\"") { j += 2; continue }
                        break
                    }
                    j += 1
                }
                copy(to: j + 1)
            case UInt8(ascii: "-") where i + 1 < b.count && b[i + 1] == UInt8(ascii: "-"):
                var j = i
                while j < b.count, b[j] != 0x0a { j += 1 }
                copy(to: j)
            case UInt8(ascii: "/") where i + 1 < b.count && b[i + 1] == UInt8(ascii: "*"):
                var depth = 0, j = i
                while j < b.count {
                    if b[j] == UInt8(ascii: "/"), j + 1 < b.count, b[j + 1] == UInt8(ascii: "*") { depth += 1; j += 2; continue }
                    if b[j] == UInt8(ascii: "*"), j + 1 < b.count, b[j + 1] == UInt8(ascii: "/") {
                        depth -= 1; j += 2
                        if depth == 0 { break }
                        continue
                    }
                    j += 1
                }
                copy(to: j)
            case UInt8(ascii: "$") where i > 0 && isIdent(b[i - 1]):
                copy(to: i + 1)
            case UInt8(ascii: "$") where i + 1 < b.count && isDigit(b[i + 1]):
                var j = i + 1
                while j < b.count, isDigit(b[j]) { j += 1 }
                let n = Int(String(decoding: b[(i + 1)..<j], as: UTF8.self)) ?? 0
                out += Array(replacement(n).utf8)
                i = j
            case UInt8(ascii: "$"):
                // A dollar quote: $tag$ … $tag$ (tag empty or an identifier not starting with a digit).
                var j = i + 1
                while j < b.count, isIdent(b[j]), b[j] != UInt8(ascii: "$") { j += 1 }
                guard j < b.count, b[j] == UInt8(ascii: "$") else { copy(to: i + 1); continue }
                let tag = Array(b[i...j])
                var k = j + 1
                while k + tag.count <= b.count, Array(b[k..<(k + tag.count)]) != tag { k += 1 }
                copy(to: k + tag.count <= b.count ? k + tag.count : b.count)
            default:
                // Runs of identifier characters are copied whole so `$` inside them is never a parameter.
                if isIdent(c) {
                    var j = i
                    while j < b.count, isIdent(b[j]) { j += 1 }
                    copy(to: j)
                } else {
                    copy(to: i + 1)
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
