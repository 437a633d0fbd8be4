/// Routes `METHOD /path/{param}` patterns to handlers. Unknown paths are 404, known paths with another
/// method are 405, and every path answers CORS preflights.
public final class Router: @unchecked Sendable {
    public typealias Handler = @Sendable (HTTPRequest) throws -> HTTPResponse

    struct Route {
        let method: String
        let segments: [Substring]
        /// `segments` as bytes, `nil` for a `{name}` parameter: matched against the request path's UTF-8 bytes
        /// (comparing `Substring`s by `Character` made routing a sixth of a health request's instructions).
        let literals: [[UInt8]?]
        let handler: Handler
    }

    private var routes: [Route] = []

    public init() {}

    public func add(_ method: String, _ pattern: String, _ handler: @escaping Handler) {
        let segments = pattern.split(separator: "/")
        let literals = segments.map { $0.first == "{" && $0.last == "}" ? nil : Array($0.utf8) }
        routes.append(Route(method: method, segments: segments, literals: literals, handler: handler))
    }

    public func get(_ p: String, _ h: @escaping Handler) { add("GET", p, h) }
    public func post(_ p: String, _ h: @escaping Handler) { add("POST", p, h) }
    public func patch(_ p: String, _ h: @escaping Handler) { add("PATCH", p, h) }
    public func put(_ p: String, _ h: @escaping Handler) { add("PUT", p, h) }
    public func delete(_ p: String, _ h: @escaping Handler) { add("DELETE", p, h) }

    public enum Match {
        case found(Handler, [String: String])
        case methodNotAllowed([String])
        case notFound
    }

    public func match(method: String, path: String) -> Match { lookup(method: method, path: path).0 }

    /// `METHOD pattern` of every route, in registration order (the metrics label of a route).
    public var routeLabels: [String] {
        routes.map { "\($0.method) /" + $0.segments.joined(separator: "/") }
    }

    /// The match and the index of the matched route in `routeLabels`.
    public func lookup(method: String, path: String) -> (Match, Int?) {
        let parts = path.utf8.split(separator: UInt8(ascii: "/"))
        var allowed: [String] = []
        for (index, route) in routes.enumerated() where route.literals.count == parts.count {
            let matches = zip(route.literals, parts).allSatisfy { literal, part in literal.map { $0.elementsEqual(part) } ?? true }
            guard matches else { continue }
            if route.method == method || (method == "HEAD" && route.method == "GET") {
                var params: [String: String] = [:]
                for (i, part) in parts.enumerated() where route.literals[i] == nil {
                    params[String(route.segments[i].dropFirst().dropLast())] = String(Substring(part))
                }
                return (.found(route.handler, params), index)
            }
            allowed.append(route.method)
        }
        return (allowed.isEmpty ? .notFound : .methodNotAllowed(allowed), nil)
    }
}
