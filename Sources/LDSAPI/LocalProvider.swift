import Foundation
import HTTPKit
import Platform
import Postgres

/// The default provider: runs inside the organisation's LDS warehouse connection (`TESSERA_LDS_CONNECTION`,
/// `carto_dw` by default), against the gazetteer `carto_lds.places` that `tessera lds load-places` fills.
/// Routing and isolines over pgRouting extend this type in their own files.
public struct LocalProvider: LDSProvider {
    public let name = "local"
    /// nil when the organisation has no such connection (the error says so only when it is used).
    let pool: PGPool?
    let connectionName: String

    public init(pool: PGPool?, connectionName: String) {
        self.pool = pool
        self.connectionName = connectionName
    }

    static let columns = "id, name, admin1, admin2, country_code, country_name, population, longitude, latitude"

    /// Runs gazetteer SQL, turning "no such table/function" into the instruction to load the places.
    func query(_ sql: String, _ parameters: [String?]) throws -> PGResult {
        guard let pool else {
            throw APIError.badRequest("Local geocoding needs the connection \(connectionName), which this organisation does not have",
                                      code: "lds_not_configured", hint: "Create the connection or set TESSERA_LDS_CONNECTION")
        }
        do {
            return try pool.withConnection { try $0.execute(sql, parameters, prepare: true) }
        } catch let e as PGError where e.sqlstate == "42P01" || e.sqlstate == "42883" || e.sqlstate == "3F000" {
            throw APIError.badRequest("No places are loaded for local geocoding", code: "gazetteer_missing",
                                      hint: "Load them with `tessera lds load-places` (GeoNames places)")
        } catch let e as PGError {
            throw APIError(e)
        }
    }

    func place(_ r: PGResult, _ i: Int, offset: Int) -> Place {
        var p = Place(latitude: r.double(i, offset + 8) ?? 0, longitude: r.double(i, offset + 7) ?? 0, provider: name)
        p.city = r.string(i, offset + 1)
        p.state = r.string(i, offset + 2)
        p.county = r.string(i, offset + 3)
        p.countryCode = r.string(i, offset + 4)
        p.country = r.string(i, offset + 5)
        return p
    }

    /// Built once: the text is also the key of the connection's prepared statement, hashed on every lookup.
    static let geocodeSQL = "SELECT \(columns), relevance FROM carto_lds.geocode($1, $2, $3)"

    public func geocode(_ q: GeocodeQuery) throws -> [Place] {
        let r = try query(Self.geocodeSQL, [q.address, q.country, String(q.limit)])
        return (0..<r.rowCount).map { i in
            var p = place(r, i, offset: 0)
            p.relevance = r.double(i, 9)
            return p
        }
    }

    /// Addresses per statement: each statement stays far below the statement timeout even when every
    /// address needs the fuzzy search (≈ 10–20 ms each on the test machine).
    static let batchChunk = 500

    /// One statement per chunk of addresses (a LATERAL join over them); identical addresses are looked up once.
    public func geocodeBatch(_ queries: [GeocodeQuery]) throws -> [Result<[Place], APIError>] {
        var unique: [GeocodeQuery] = []
        var slot: [GeocodeQuery: Int] = [:]
        let positions = queries.map { q in
            if let i = slot[q] { return i }
            unique.append(q)
            slot[q] = unique.count - 1
            return unique.count - 1
        }
        var answers: [Result<[Place], APIError>] = []
        for start in stride(from: 0, to: unique.count, by: Self.batchChunk) {
            answers += try geocodeChunk(Array(unique[start..<min(start + Self.batchChunk, unique.count)]))
        }
        return positions.map { answers[$0] }
    }

    func geocodeChunk(_ queries: [GeocodeQuery]) throws -> [Result<[Place], APIError>] {
        guard let limit = queries.map(\.limit).max() else { return [] }
        // JSON arrays keep every address a bound value (json_array_elements_text turns null into NULL).
        let r = try query("""
            SELECT ord, \(Self.columns), relevance FROM carto_lds.geocode_batch(
                ARRAY(SELECT json_array_elements_text($1::json)), ARRAY(SELECT json_array_elements_text($2::json)), $3)
            """, [JSON.array(queries.map { .string($0.address) }).text, JSON.array(queries.map { .optional($0.country) }).text, String(limit)])
        var results = [[Place]](repeating: [], count: queries.count)
        for i in 0..<r.rowCount {
            guard let ord = r.int(i, 0), ord >= 1, ord <= queries.count, results[ord - 1].count < queries[ord - 1].limit else { continue }
            var p = place(r, i, offset: 1)
            p.relevance = r.double(i, 10)
            results[ord - 1].append(p)
        }
        return results.map { .success($0) }
    }

    public func reverse(latitude: Double, longitude: Double, language: String?) throws -> [Place] {
        let r = try query("SELECT \(Self.columns) FROM carto_lds.reverse($1, $2, 1)", [String(longitude), String(latitude)])
        return (0..<r.rowCount).map { place(r, $0, offset: 0) }
    }
}
