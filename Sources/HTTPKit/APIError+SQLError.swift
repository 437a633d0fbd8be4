import SQLKit

extension APIError {
    /// SQL that cannot be built from the request's names is the client's mistake: a 400.
    public init(_ error: SQLError) {
        switch error {
        case .invalidIdentifier: self.init(400, "invalid_identifier", error.description)
        case .invalidName(let name, let reason): self.init(400, "invalid_parameter", "Invalid table name \(name): \(reason)")
        }
    }
}

extension QualifiedName {
    /// Parses a request's table name; a malformed one is a 400 naming the parameter it came from.
    public static func parameter(_ text: String, named parameter: String, code: String = "invalid_parameter") throws(APIError) -> QualifiedName {
        do { return try QualifiedName(parsing: text) } catch {
            guard case .invalidName(_, let reason) = error else { throw APIError(error) }
            throw APIError.badRequest("Invalid \(parameter) \"\(text)\": \(reason)", code: code)
        }
    }
}

extension SQLError: HTTPResponseError {
    public func apiError(requestId: String?) -> APIError { APIError(self) }
}
