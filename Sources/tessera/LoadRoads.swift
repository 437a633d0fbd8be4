import Config
import Foundation
import LDSAPI
import Platform
import Postgres

/// `tessera lds load-roads --osm FILE [--email E [--connection C]]`: the road graph of local routing and
/// isolines, loaded into the embedded warehouse (TESSERA_WAREHOUSE_URL) or, with --email, into that
/// organisation's LDS connection (TESSERA_LDS_CONNECTION, carto_dw), like `lds load-places`.
func ldsLoadRoads(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let osm = try cli.require("--osm")
    let email = cli.take("--email")
    let name = cli.take("--connection") ?? config.ldsConnection
    try cli.finish()
    let connection: PGConnection
    let tool: (conninfo: String, password: String?)
    if let email {
        let services = try Services(config: config)
        let record = try services.warehouses.connection(account: try ldsAccount(services, email), name: name)
        tool = try services.warehouses.toolConninfo(for: record, applicationName: "tessera-load-roads")
        connection = try services.warehouses.privilegedPool(for: record).checkout()
    } else {
        guard !config.warehouseURL.isEmpty else { throw CLIError(message: "give --email (and --connection) or set TESSERA_WAREHOUSE_URL", code: 2) }
        // The password may be in the URL's passfile (packaging keeps it there), not inline.
        tool = (config.warehouseURL, try warehouseCredentials(config).password)
        connection = try PGConnection(config.warehouseURL)
    }
    do {
        let summary = try RoadGraphLoader.load(osmFile: osm, connection: connection, toolConninfo: tool.conninfo, password: tool.password) { line in
            // Unbuffered, so progress shows while osm2pgrouting runs even when stdout is a pipe.
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        print(String(format: "road graph loaded: %d edges, %d vertices in %.1f s", summary.edges, summary.vertices, summary.seconds))
    } catch let e as RoadGraphLoader.Failure {
        throw CLIError(message: e.description)
    }
}
