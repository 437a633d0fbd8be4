import Config
import Foundation
import LDSAPI
import Platform

/// `tessera lds load-roads --osm FILE --email E [--connection C]`: the road graph of local routing and
/// isolines, loaded into the organisation's LDS warehouse connection (TESSERA_LDS_CONNECTION, carto_dw).
func ldsLoadRoads(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let osm = try cli.require("--osm")
    let email = try cli.require("--email")
    let name = cli.take("--connection") ?? config.ldsConnection
    try cli.finish()
    let services = try Services(config: config)
    guard let user = try AccountStore(services.metadata).userByEmail(email) else { throw CLIError(message: "no user \(email)") }
    let record = try services.warehouses.connection(account: user.accountId, name: name)
    let tool = try services.warehouses.toolConninfo(for: record, applicationName: "tessera-load-roads")
    do {
        let summary = try RoadGraphLoader.load(osmFile: osm, pool: try services.warehouses.pool(for: record),
                                               toolConninfo: tool.conninfo, password: tool.password) { line in
            // Unbuffered, so progress shows while osm2pgrouting runs even when stdout is a pipe.
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        print(String(format: "road graph loaded into %@: %d edges, %d vertices in %.1f s", name, summary.edges, summary.vertices, summary.seconds))
    } catch let e as RoadGraphLoader.Failure {
        throw CLIError(message: e.description)
    }
}
