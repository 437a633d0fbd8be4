/// CARTO clients send the same parameters as a query string on GET (objects JSON-stringified) and as a
/// JSON body on POST (objects as real JSON). This reads both the same way; body values win.
public struct Parameters: Sendable {
    public let query: [String: String]
    public let body: [String: JSON]

    /// Maximum JSON nesting accepted from clients (hostile deep filters are refused early).
    public static let maxDepth = 64

    public init(query: [String: String] = [:], body: [String: JSON] = [:]) {
        self.query = query
        self.body = body
    }

    /// Reads query parameters and, for POST/PUT/PATCH with a body, the JSON object body.
    public static func from(_ request: HTTPRequest, bodyLimit: Int) throws -> Parameters {
        let query = try request.queryParameters()
        guard ["POST", "PUT", "PATCH"].contains(request.method) else { return Parameters(query: query) }
        let bytes = try request.body(limit: bodyLimit)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return Parameters(query: query) }
        switch request.mediaType {
        case "application/json", nil:
            guard case .object(let object) = try decodeJSON(bytes) else {
                throw APIError.badRequest("Request body must be a JSON object", code: "invalid_json")
            }
            return Parameters(query: query, body: object)
        case "application/x-www-form-urlencoded":
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw APIError.badRequest("Request body is not valid UTF-8", code: "invalid_utf8")
            }
            let form = try FormDecoding.decode(text)
            return Parameters(query: query.merging(form) { $1 })
        default:
            throw APIError(415, "unsupported_media_type", "Content-Type must be application/json")
        }
    }

    /// Decodes client JSON, refusing invalid UTF-8, malformed text and excessive nesting with 400.
    public static func decodeJSON(_ bytes: [UInt8]) throws -> JSON {
        do { return try JSON.decode(bytes, maxDepth: maxDepth) } catch {
            if String(validating: bytes, as: UTF8.self) == nil {
                throw APIError.badRequest("Request body is not valid UTF-8", code: "invalid_utf8")
            }
            throw APIError.badRequest("Malformed JSON (or nested deeper than \(maxDepth) levels)", code: "invalid_json")
        }
    }

    public func has(_ name: String) -> Bool { body[name] != nil || query[name] != nil }

    /// A scalar parameter as text.
    public func string(_ name: String) -> String? {
        if let value = body[name] {
            switch value {
            case .string(let s): return s
            case .number(let n): return n.rounded() == n && abs(n) < 9.0e15 ? String(Int64(n)) : String(n)
            case .bool(let b): return b ? "true" : "false"
            case .null: return nil
            default: return value.text
            }
        }
        return query[name]
    }

    /// A structured parameter: real JSON from a body, or a JSON-stringified value from the query string.
    public func json(_ name: String) throws -> JSON? {
        if let value = body[name] {
            if case .string(let s) = value, let decoded = try? Parameters.decodeJSON(Array(s.utf8)),
               decoded.arrayValue != nil || decoded.objectValue != nil { return decoded }
            return value
        }
        guard let text = query[name], !text.isEmpty else { return nil }
        do { return try Parameters.decodeJSON(Array(text.utf8)) } catch {
            throw APIError.badRequest("Parameter \(name) must be valid JSON", code: "invalid_parameter")
        }
    }

    public func int(_ name: String) throws -> Int? {
        guard let s = string(name), !s.isEmpty else { return nil }
        guard let n = Int(s) else { throw APIError.badRequest("Parameter \(name) must be an integer", code: "invalid_parameter") }
        return n
    }

    public func bool(_ name: String) -> Bool? {
        guard let s = string(name) else { return nil }
        return ["true", "1", "yes"].contains(s.lowercased())
    }
}
