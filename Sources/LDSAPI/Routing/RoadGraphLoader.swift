import Foundation
import Postgres
import Spawn

/// Loads the road graph of the local routing provider: osm2pgrouting imports an OSM XML extract into the
/// staging schema `carto_lds_osm`, then `carto_lds.build_road_graph` derives the per-mode costs and swaps
/// the new graph in (see warehouse/050_routing.sql). Used by `tessera lds load-roads`.
public enum RoadGraphLoader {
    public struct Summary: Sendable {
        public let edges: Int
        public let vertices: Int
        public let seconds: Double
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs the import into the warehouse `db` is connected to; `toolConninfo` (without the password) and
    /// `password` reach the same database for osm2pgrouting. `progress` gets osm2pgrouting's output lines
    /// and our own steps.
    public static func load(osmFile: String, connection db: PGConnection, toolConninfo: String, password: String?,
                            progress: (String) -> Void) throws -> Summary {
        let started = Date()
        guard let head = FileHandle(forReadingAtPath: osmFile)?.readData(ofLength: 256) else {
            throw Failure(description: "cannot read \(osmFile)")
        }
        // osm2pgrouting parses OSM XML only; a PBF extract would fail deep inside it with a parser message.
        guard String(decoding: head, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("<") else {
            throw Failure(description: "\(osmFile) is not OSM XML (osm2pgrouting reads .osm XML, not PBF); convert it first, e.g. `osmium cat extract.osm.pbf -o extract.osm`")
        }
        guard let info = PGConnection.parseConninfo(toolConninfo) else { throw Failure(description: "the warehouse conninfo is not valid") }
        guard try db.execute("SELECT 1 FROM pg_extension WHERE extname = 'pgrouting'").rowCount == 1 else {
            throw Failure(description: "the pgrouting extension is missing in the warehouse; as a superuser run: CREATE EXTENSION pgrouting")
        }
        // A country extract takes longer than an API statement may.
        _ = try db.execute("SET statement_timeout = 0")
        progress("installing the LDS SQL (schema carto_lds)")
        _ = try LDSWarehouse.apply(db)

        progress("importing \(osmFile) with osm2pgrouting")
        try runOSM2PGRouting(osmFile: osmFile, info: info, password: password, progress: progress)

        progress("building the road graph (costs per mode)")
        let r = try db.execute("SELECT edges, vertices FROM carto_lds.build_road_graph($1)", [(osmFile as NSString).lastPathComponent])
        return Summary(edges: r.int(0, 0) ?? 0, vertices: r.int(0, 1) ?? 0, seconds: Date().timeIntervalSince(started))
    }

    /// osm2pgrouting gets the connection as flags and the password through a libpq password file
    /// (`PGPassFile`: it puts an explicit, empty `password=` in its own conninfo, which overrides
    /// PGPASSWORD), never in argv, which other users can read in /proc. `hostaddr` pins the address the
    /// connection policy checked. It needs the schema to exist (the routing SQL creates it). It runs as a
    /// `ChildProcess`: it dies with the CLI instead of loading on unattended.
    static func runOSM2PGRouting(osmFile: String, info: [String: String], password: String?, progress: (String) -> Void) throws {
        let tool: String
        do { tool = try ChildProcess.tool("osm2pgrouting") } catch {
            throw Failure(description: "osm2pgrouting is not installed (Debian package osm2pgrouting)")
        }
        let mapconfig = "/usr/share/osm2pgrouting/mapconfig.xml"
        let argv = [tool, "--file", osmFile, "--conf", mapconfig, "--schema", "carto_lds_osm", "--clean",
                    "--dbname", info["dbname"] ?? "carto_dw", "--username", info["user"] ?? "carto_dw",
                    "--host", info["host"] ?? "/var/run/postgresql", "--port", info["port"] ?? "5432"]
        let passfile = try PGPassFile(password: password ?? "")
        defer { passfile.remove() }
        var env = ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": passfile.directory]
        if password != nil { env.merge(passfile.environment) { $1 } }
        env["PGSSLMODE"] = info["sslmode"]
        env["PGHOSTADDR"] = info["hostaddr"]
        let output = passfile.directory + "/output"
        // A country extract is held in memory whole: no address-space cap beyond the system's.
        let child = try ChildProcess(argv, environment: env, stdout: output, stderr: output, addressSpaceLimit: 0)
        // Forward output line by line (the progress bar redraws with \r: those become lines too).
        var forwarded: UInt64 = 0
        var pending = Data()
        var tail: [String] = []
        func forward() {
            guard let handle = FileHandle(forReadingAtPath: output) else { return }
            defer { try? handle.close() }
            try? handle.seek(toOffset: forwarded)
            let chunk = (try? handle.readToEnd()) ?? Data()
            forwarded += UInt64(chunk.count)
            pending.append(chunk)
            while let cut = pending.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
                let line = String(decoding: pending[pending.startIndex..<cut], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                pending.removeSubrange(pending.startIndex...cut)
                guard !line.isEmpty else { continue }
                progress("  osm2pgrouting: \(line)")
                tail = Array((tail + [line]).suffix(5))
            }
        }
        let outcome = child.wait(deadline: .distantFuture, isCancelled: { false }, tick: forward)
        forward()
        guard outcome == .exited(0) else {
            throw Failure(description: "osm2pgrouting failed (\(outcome)): \(tail.joined(separator: " | "))")
        }
    }
}
