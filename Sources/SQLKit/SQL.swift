/// One SQL statement or fragment as a value: text with `$n` placeholders plus the values bound to them.
/// Built by string interpolation, which binds interpolated values and quotes `Identifier`s; raw text only
/// enters through `SQL(unsafeRaw:)`. Appending renumbers the appended part's placeholders, so fragments
/// compose without sharing a counter. No connection is needed to build one.
public struct SQL: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringInterpolation {
    public private(set) var text: String
    public private(set) var parameters: [String?]

    /// Trusted text, never request input: developer-written SQL, or a user's query that the caller has
    /// authorised to run as-is. `$1…$n` in it refer to `parameters`.
    public init(unsafeRaw text: String, parameters: [String?] = []) {
        self.text = text
        self.parameters = parameters
    }

    public init() { self.init(unsafeRaw: "") }

    public init(stringLiteral value: String) { self.init(unsafeRaw: value) }

    public init(stringInterpolation: Interpolation) { self = stringInterpolation.sql }

    public var isEmpty: Bool { text.isEmpty }
    public var description: String { text }

    /// Appends `other`, shifting its placeholders past this value's parameters.
    public mutating func append(_ other: SQL) {
        text += Placeholders.shift(other.text, by: parameters.count)
        parameters += other.parameters
    }

    public static func + (lhs: SQL, rhs: SQL) -> SQL {
        var s = lhs
        s.append(rhs)
        return s
    }

    public static func += (lhs: inout SQL, rhs: SQL) { lhs.append(rhs) }

    /// Binds one value and returns the new placeholder (`$n`) as SQL.
    public static func bind(_ value: String?) -> SQL { SQL(unsafeRaw: "$1", parameters: [value]) }

    /// A parameter whose value is given per execution (a prepared statement's z/x/y), filled in by
    /// `parameters(filling:)`. Its stand-in starts with NUL, which no real bound value can hold (libpq sends
    /// C strings), so it cannot be mistaken for one.
    public static func slot(_ name: String) -> SQL { bind("\u{0}" + name) }

    /// Whether some slot still waits for its value (such a value must go through `parameters(filling:)`).
    public var hasSlots: Bool { parameters.contains { $0?.utf8.first == 0 } }

    /// The parameters with every slot replaced by its value; nil when a slot has no value.
    public func parameters(filling values: [String: String?]) -> [String?]? {
        var out = parameters
        for (i, p) in out.enumerated() {
            guard let p, p.utf8.first == 0 else { continue }
            guard let value = values[String(p.dropFirst())] else { return nil }
            out[i] = value
        }
        return out
    }

    public struct Interpolation: StringInterpolationProtocol {
        var sql = SQL()
        public init(literalCapacity: Int, interpolationCount: Int) {}
        public mutating func appendLiteral(_ literal: String) { sql.text += literal }
        /// Values are bound, never spliced.
        public mutating func appendInterpolation(_ value: String?) { sql.append(.bind(value)) }
        public mutating func appendInterpolation<T: BinaryInteger>(_ value: T) { sql.append(.bind(String(value))) }
        public mutating func appendInterpolation(_ value: Double) { sql.append(.bind(SQL.text(value))) }
        public mutating func appendInterpolation(_ value: Bool) { sql.append(.bind(value ? "true" : "false")) }
        public mutating func appendInterpolation(_ identifier: Identifier) { sql.text += identifier.quoted }
        public mutating func appendInterpolation(_ name: QualifiedName) { sql.append(name.identifier) }
        public mutating func appendInterpolation(_ fragment: SQL) { sql.append(fragment) }
        /// Several fragments with a separator (`, `, ` AND `…).
        public mutating func appendInterpolation(_ fragments: [SQL], joinedBy separator: String) {
            sql.append(SQL.join(fragments, separator: separator))
        }
        /// Trusted text spliced as is (a developer's constant); named so that it stands out in review.
        public mutating func appendInterpolation(unsafeRaw text: String) { sql.text += text }
        /// A number the server reads as a literal (a fixed extent or LIMIT that must stay in the text so a
        /// prepared statement keeps its plan); integers only, so nothing can be smuggled in.
        public mutating func appendInterpolation<T: BinaryInteger>(literal value: T) { sql.text += String(value) }
    }

    public static func join(_ fragments: [SQL], separator: String) -> SQL {
        var out = SQL()
        for (i, f) in fragments.enumerated() {
            if i > 0 { out.text += separator }
            out.append(f)
        }
        return out
    }

    /// The text with every bound value written in as a string constant (or NULL), for the one consumer
    /// that takes no parameters: GDAL's `ogr2ogr -sql` in the export writer. An untyped constant takes its
    /// type from its context as an untyped parameter does. Quoting is libpq's `PQescapeLiteral`: quotes
    /// doubled, and with a backslash the `E'…'` form with backslashes doubled, so the value reads back
    /// unchanged whatever `standard_conforming_strings` says. nil when a slot has no value or a value holds NUL.
    public func inlined() -> String? {
        guard !hasSlots, !parameters.contains(where: { $0?.utf8.contains(0) == true }) else { return nil }
        if parameters.isEmpty { return text }
        return Placeholders.rewrite(text) { n in
            guard n >= 1, n <= parameters.count else { return "$\(n)" }
            return parameters[n - 1].map(SQL.literal) ?? "NULL"
        }
    }

    /// A string constant holding `value` exactly (see `inlined`).
    public static func literal(_ value: String) -> String {
        var out = value.contains("\\") ? " E'" : "'"
        for c in value.unicodeScalars {
            if c == "'" { out += "''" } else if c == "\\" { out += "\\\\" } else { out.unicodeScalars.append(c) }
        }
        return out + "'"
    }

    /// How numbers are bound: integral values without a fraction, so they also read as int/bigint.
    public static func text(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
