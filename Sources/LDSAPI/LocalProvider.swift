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

    public func geocode(_ q: GeocodeQuery) throws -> [Place] {
        let r = try query("SELECT \(Self.columns), relevance FROM carto_lds.geocode($1, $2, $3)", [q.address, q.country, String(q.limit)])
        return (0..<r.rowCount).map { i in
            var p = place(r, i, offset: 0)
            p.relevance = r.double(i, 9)
            return p
        }
    }

    /// One statement for the whole batch (a LATERAL join over the addresses).
    public func geocodeBatch(_ queries: [GeocodeQuery]) throws -> [Result<[Place], APIError>] {
        guard let limit = queries.map(\.limit).max() else { return [] }
        func array(_ values: [String?]) -> String {
            "{" + values.map { v in v.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" } ?? "NULL" }
                .joined(separator: ",") + "}"
        }
        let r = try query("SELECT ord, \(Self.columns), relevance FROM carto_lds.geocode_batch($1::text[], $2::text[], $3)",
                          [array(queries.map(\.address)), array(queries.map(\.country)), String(limit)])
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
