import Foundation
import HTTPKit
import Platform

/// `GET /api/v3/lds/geocoding/geocode`, `GET …/reverse` and `POST …/batch`. Answers are arrays of
/// `{error, value}` entries (contract §9): one entry for a single request, one per address for a batch.
struct GeocodingRoutes: Sendable {
    let lds: LDSContext
    static let maxBatch = 10_000
    static let maxLimit = 50
    static let maxAddressLength = 500

    func register(_ router: Router) {
        router.get("/api/v3/lds/geocoding/geocode", geocode)
        router.get("/api/v3/lds/geocoding/reverse", reverse)
        router.post("/api/v3/lds/geocoding/batch", batch)
    }

    /// The answer: one `{error, value}` entry per address, in order, written as `JSON.encoded()` would write it.
    static func respond(_ results: [Result<[Place], APIError>]) -> HTTPResponse {
        var out: [UInt8] = []
        out.reserveCapacity(64 + 256 * results.count)
        out.append(UInt8(ascii: "["))
        for (i, result) in results.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            switch result {
            case .success(let places):
                out.append(contentsOf: #"{"error":null,"value":["#.utf8)
                for (j, place) in places.enumerated() {
                    if j > 0 { out.append(UInt8(ascii: ",")) }
                    place.append(to: &out)
                }
                out.append(contentsOf: "]}".utf8)
            case .failure(let e):
                out.append(contentsOf: #"{"code":"#.utf8)
                JSON.appendString(e.code, to: &out)
                out.append(contentsOf: #","error":"#.utf8)
                JSON.appendString(e.message, to: &out)
                out.append(contentsOf: #","value":null}"#.utf8)
            }
        }
        out.append(UInt8(ascii: "]"))
        return .json(encoded: out, headers: [("Cache-Control", "no-store")])
    }

    /// ISO 3166-1 alpha-2, any case; nil when absent.
    static func country(_ text: String?) throws -> String? {
        guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        guard text.count == 2, text.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw APIError.badRequest("country must be an ISO 3166-1 alpha-2 code such as ES (got '\(text.prefix(20))')", code: "invalid_country")
        }
        return text.uppercased()
    }

    /// The address checks shared by single and batch requests.
    static func query(address: String?, country: String?, limit: Int) throws -> GeocodeQuery {
        guard let address = address.map(trimmed), !address.isEmpty, hasLetterOrDigit(address) else {
            throw APIError.badRequest("address must not be empty", code: "invalid_address")
        }
        guard address.utf8.count <= maxAddressLength || address.count <= maxAddressLength, !address.utf8.contains(0) else {
            throw APIError.badRequest("address must be at most \(maxAddressLength) characters", code: "invalid_address")
        }
        return GeocodeQuery(address: address, country: try Self.country(country), limit: limit)
    }

    // These checks run on every geocode: Foundation's `trimmingCharacters` (through NSString) and Character
    // properties cost about 7% of lds-api's CPU per lookup (perf), so ASCII, nearly every address, takes a
    // byte path and the rest keeps the Unicode rules.

    /// Without leading and trailing Unicode White_Space (the set of `CharacterSet.whitespacesAndNewlines`).
    static func trimmed(_ text: String) -> String {
        func isSpace(_ c: Unicode.Scalar) -> Bool {
            c.isASCII ? c == " " || (9...13).contains(c.value) : c.properties.isWhitespace
        }
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }), let last = scalars.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return first == scalars.startIndex && last == scalars.index(before: scalars.endIndex)
            ? text : String(String.UnicodeScalarView(scalars[first...last]))
    }

    /// Whether the text has anything to look up (an address of punctuation alone has not).
    static func hasLetterOrDigit(_ text: String) -> Bool {
        if text.utf8.contains(where: { ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7a || (0x30...0x39).contains($0) }) { return true }
        return !text.utf8.allSatisfy { $0 < 0x80 } && text.contains { $0.isLetter || $0.isNumber }
    }

    static func limit(_ p: Parameters) throws -> Int {
        let limit: Int?
        do { limit = try p.int("limit") } catch { limit = -1 }
        guard let limit else { return 1 }
        guard (1...maxLimit).contains(limit) else {
            throw APIError.badRequest("limit must be an integer between 1 and \(maxLimit)", code: "invalid_parameter")
        }
        return limit
    }

    func geocode(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try lds.authenticate(request)
        let p = try lds.parameters(request)
        guard p.has("address") else { throw APIError.badRequest("Missing required parameter: address", code: "missing_parameter") }
        let q = try Self.query(address: p.string("address"), country: p.string("country"), limit: try Self.limit(p))
        let places = try lds.metered(principal, .geocoding, units: 1) { try $0.geocode(q) }
        return Self.respond([.success(places)])
    }

    func reverse(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try lds.authenticate(request)
        let p = try lds.parameters(request)
        let point = try Coordinate(longitude: try Coordinate.number(p, "lon"), latitude: try Coordinate.number(p, "lat"))
        let language = p.string("language")
        let places = try lds.metered(principal, .geocoding, units: 1) {
            try $0.reverse(latitude: point.latitude, longitude: point.longitude, language: language)
        }
        return Self.respond([.success(places)])
    }

    /// `{"addresses": ["Zaragoza", {"address": "Paris", "country": "US"}, …], "country"?, "limit"?}`: up to
    /// 10,000 entries answered in order; a bad entry gets its own error, the others still run. Each
    /// address counts against the geocoding quota.
    func batch(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try lds.authenticate(request)
        let p = try lds.parameters(request)
        guard let list = p.body["addresses"] else { throw APIError.badRequest("Missing required parameter: addresses", code: "missing_parameter") }
        guard let items = list.arrayValue else { throw APIError.badRequest("addresses must be an array", code: "invalid_parameter") }
        guard !items.isEmpty else { throw APIError.badRequest("addresses must not be empty", code: "invalid_parameter") }
        guard items.count <= Self.maxBatch else {
            throw APIError.badRequest("At most \(Self.maxBatch) addresses per batch (got \(items.count))", code: "batch_too_large")
        }
        let limit = try Self.limit(p)
        let defaultCountry = p.string("country")
        _ = try Self.country(defaultCountry)
        var results = [Result<[Place], APIError>?](repeating: nil, count: items.count)
        var valid: [(index: Int, query: GeocodeQuery)] = []
        for (i, item) in items.enumerated() {
            do {
                let q: GeocodeQuery
                switch item {
                case .string(let s): q = try Self.query(address: s, country: defaultCountry, limit: limit)
                case .object(let o):
                    q = try Self.query(address: o["address"]?.stringValue, country: o["country"]?.stringValue ?? defaultCountry, limit: limit)
                default: throw APIError.badRequest("each address must be a string or {address, country}", code: "invalid_address")
                }
                valid.append((i, q))
            } catch let e as APIError {
                results[i] = .failure(e)
            }
        }
        if !valid.isEmpty {
            let answers = try lds.metered(principal, .geocoding, units: valid.count) { try $0.geocodeBatch(valid.map(\.query)) }
            for (slot, answer) in zip(valid, answers) { results[slot.index] = answer }
        }
        return Self.respond(results.map { $0 ?? .success([]) })
    }
}
