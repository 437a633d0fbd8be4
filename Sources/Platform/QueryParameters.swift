import HTTPKit

/// `queryParameters` for PostgreSQL: a JSON array bound to `$1`, `$2`… as text values.
public enum QueryParameters {
    public static func positional(_ json: JSON?) throws -> [String?] {
        guard let json, !json.isNull else { return [] }
        if case .string(let s) = json, s.isEmpty { return [] }
        guard let items = json.arrayValue else {
            throw APIError.badRequest("queryParameters must be an array for PostgreSQL connections ($1, $2, …)", code: "invalid_parameter")
        }
        guard items.count <= 1000 else { throw APIError.badRequest("Too many queryParameters", code: "invalid_parameter") }
        return try items.map { item in
            switch item {
            case .null: return nil
            case .string(let s):
                guard !s.contains("\0") else { throw APIError.badRequest("queryParameters must not contain NUL characters") }
                return s
            case .bool(let b): return b ? "true" : "false"
            default: return item.text
            }
        }
    }
}
