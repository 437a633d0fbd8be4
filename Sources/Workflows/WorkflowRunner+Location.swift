import HTTPKit
import Postgres
import SQLKit

extension WorkflowRunner {
    static let locationBatch = 200

    /// Completes a location node's freshly created table inside its CREATE transaction: reads the questions
    /// from the helper columns in batches, asks the providers (each batch charged to the quota first), writes
    /// the answers and drops the helpers. A failure or a kill rolls the whole table back.
    func fillLocation(_ compiler: Compiler, table: SQL, account: String, isCancelled: () -> Bool, on db: PGConnection) throws {
        let node = compiler.node
        guard let locations else {
            throw WorkflowError.invalid("this worker has no LDS providers", node: node.id, parameter: "type")
        }
        let helpers: [String]
        switch node.type {
        case "geocode": helpers = ["address", "country"]
        case "isolines": helpers = ["lon", "lat", "mode", "range"]
        default: helpers = ["lon", "lat", "lon2", "lat2", "mode"]
        }
        let columns = try helpers.map { try Identifier(Compiler.helperPrefix + $0) }
        let rows = try db.execute("SELECT ctid::text, \(columns.map { "\($0)" as SQL }, joinedBy: ", ") FROM \(table)" as SQL)
        let update = try compiler.locationUpdate(table: table)
        var start = 0
        while start < rows.rowCount {
            // Throwing rolls back the half-filled table; the runner sees the cancellation and stops quietly.
            if isCancelled() { throw WorkflowError.invalid("the run was cancelled", node: node.id) }
            let batch = Array(start..<min(start + Self.locationBatch, rows.rowCount))
            start += Self.locationBatch
            var answers: [JSON] = []
            do {
                switch node.type {
                case "geocode":
                    let asked = batch.filter { !(rows.string($0, 1) ?? "").trimmingWhitespace.isEmpty }
                    let places = try locations.geocode(account: account, asked.map {
                        WorkflowGeocodeQuery(address: rows.string($0, 1)!, country: rows.string($0, 2))
                    })
                    for (row, place) in zip(asked, places) {
                        guard let place else { continue }
                        answers.append(["ctid": .optional(rows.string(row, 0)), "lon": .number(place.longitude),
                                        "lat": .number(place.latitude), "relevance": place.relevance.map(JSON.number) ?? .null])
                    }
                case "isolines":
                    let areas = try locations.isolines(account: account, batch.map {
                        WorkflowIsolineQuery(longitude: rows.double($0, 1) ?? 0, latitude: rows.double($0, 2) ?? 0,
                                             mode: rows.string($0, 3) ?? "car", seconds: rows.double($0, 4) ?? 0)
                    })
                    answers = zip(batch, areas).map { ["ctid": .optional(rows.string($0, 0)), "geometry": .string($1)] }
                default:
                    let routes = try locations.routes(account: account, batch.map {
                        WorkflowRouteQuery(origin: (rows.double($0, 1) ?? 0, rows.double($0, 2) ?? 0),
                                           destination: (rows.double($0, 3) ?? 0, rows.double($0, 4) ?? 0), mode: rows.string($0, 5) ?? "car")
                    })
                    answers = zip(batch, routes).map {
                        ["ctid": .optional(rows.string($0, 0)), "geometry": .string($1.geometry), "distance": .number($1.distance),
                         "duration": .number($1.duration)]
                    }
                }
            } catch let e as APIError where e.status == 429 {
                throw WorkflowError.invalid(e.message + (e.hint.map { " (\($0))" } ?? ""), node: node.id, parameter: "type")
            }
            if !answers.isEmpty {
                try db.execute(update.text, update.parameters(filling: ["answers": JSON.array(answers).text])!)
            }
        }
        try db.execute("ALTER TABLE \(table) \(columns.map { "DROP COLUMN \($0)" as SQL }, joinedBy: ", ")" as SQL)
    }
}
