import HTTPKit
import Platform
import Postgres
import SQLKit

/// Before a publish: every dataset's connection still exists and its table or query still reads, so the
/// published version never points at a vanished source (the previous published version stays served).
struct MapSourceCheck {
    let services: Services

    static func gone(_ message: String) -> APIError { APIError.conflict(message, code: "map_source_missing") }

    func check(_ datasets: JSON, principal: Principal, request: HTTPRequest) throws {
        let connections = Set(try ConnectionStore(services.metadata).list(account: principal.accountId).map(\.name))
        for (i, d) in (datasets.arrayValue ?? []).enumerated() {
            let connection = d["connectionName"]?.stringValue ?? ""
            let source = d["source"]?.stringValue ?? ""
            let label = "Dataset \(i + 1) (\(d["id"]?.stringValue ?? "?"))"
            guard connections.contains(connection) else {
                throw Self.gone("\(label): the connection \(connection) no longer exists. Change the dataset before publishing.")
            }
            let probe: SQL
            if d["type"]?.stringValue == "query" {
                // The builder's own query, run as its author would run it; LIMIT 0 reads no rows.
                probe = SQL(unsafeRaw: "SELECT * FROM (\(source)\n) AS tessera_publish_probe LIMIT 0")
            } else {
                guard let name = try? QualifiedName(parsing: source) else {
                    throw Self.gone("\(label): \(source) does not name a table")
                }
                probe = "SELECT * FROM \(name.identifier) LIMIT 0"
            }
            do {
                _ = try services.warehouses.withSession(for: principal, connection: connection, request: request, readsOnly: true) {
                    try $0.execute(probe)
                }
            } catch let error as PGError where !error.connectionLost {
                throw Self.gone("\(label): \(source) on \(connection) cannot be read (\(error.message)). "
                                + "Change the dataset before publishing.")
            }
        }
    }
}
