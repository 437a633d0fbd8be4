import Foundation
import HTTPKit
import Postgres

/// The checks of `tessera selftest`, in the order they run; each names the program it proves.
extension SelftestRun {
    static let fixtureRows = 25

    func all(importURL: String?) {
        check("sql-api query") {
            let one = try sql("SELECT 1 AS one")["one"]?.intValue
            guard one == 1 else { throw SelftestFailure("select 1 gave \(String(describing: one))") }
            return "select 1 with an API token"
        }
        check("workspace-api login") { try signIn() }
        for (name, file, table) in [("import csv", "points.csv", "points_csv"), ("import zipped shp", "points_shp.zip", "points_shp"),
                                    ("import geopackage", "points.gpkg", "points_gpkg"), ("import kml", "points.kml", "points_kml")] {
            check(name) { try importFile(try fixture(file), table: table) }
        }
        check("import from url") {
            guard let importURL else { throw SelftestSkip("no --import-url (a URL the import allow-list lets through)") }
            return try importFromURL(importURL, table: "points_url")
        }
        check("import preview") { try preview(try fixture("points.csv")) }
        check("sql-worker batch job") { try batchJob() }
        check("maps-api tile + cache") { try tileCachedThenPurged() }
        check("public map") { try publicMap() }
        check("workspace-subscriber") { try userRemoval() }
        check("lds geocode") { try geocode() }
        check("lds geocode-table job") { try geocodeTable() }
        check("lds route + isoline") { try routeAndIsoline() }
    }

    /// The admin's session, then an OAuth client and its access token (what the workspace app does).
    func signIn() throws -> String {
        let login = try http.request("POST", "/api/v3/auth/login", json: ["email": .string(email), "password": .string(password)])
        let doc = try expect(login, 200, "login")
        guard let cookie = login.header("set-cookie")?.split(separator: ";").first.map(String.init),
              let csrf = doc["csrf_token"]?.stringValue else { throw SelftestFailure("login gave no session: \(login.text)") }
        var session = http
        session.cookie = cookie
        let client = try expect(try session.request("POST", "/api/v3/oauth-clients", json: ["name": "selftest"], headers: ["X-CSRF-Token": csrf]),
                                201, "OAuth client")
        guard let id = client["client_id"]?.stringValue, let secret = client["client_secret"]?.stringValue else {
            throw SelftestFailure("OAuth client without credentials")
        }
        let form = SelftestHTTP.query([("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret),
                                       ("audience", "carto-cloud-native-api")])
        guard let access = try expect(try http.request("POST", "/api/oauth/token", form: form), 200, "OAuth token")["access_token"]?.stringValue else {
            throw SelftestFailure("no access_token")
        }
        oauth = access
        return "session, OAuth client and access token"
    }

    func finalImport(_ id: String) throws -> JSON {
        try wait("import \(id)") { () -> JSON? in
            let body = try expect(try http.request("GET", "/api/v3/imports/\(id)", token: token), 200, "import status")
            // Not `? body : nil`: JSON is nil-literal convertible, so that would be .null, not "not yet".
            guard ["success", "failure", "cancelled"].contains(body["status"]?.stringValue ?? "") else { return Optional<JSON>.none }
            return body
        }
    }

    func importedRows(_ job: JSON, table: String) throws -> String {
        guard job["status"]?.stringValue == "success" else {
            throw SelftestFailure("import ended \(job["status"]?.stringValue ?? "?"): \(job["error"]?.text ?? "")")
        }
        let rows = try count(table)
        guard rows == Self.fixtureRows else { throw SelftestFailure("\(rows) rows in \(schema).\(table), expected \(Self.fixtureRows)") }
        return "\(rows) rows in \(schema).\(table)"
    }

    func importFile(_ file: String, table: String) throws -> String {
        let name = (file as NSString).lastPathComponent
        let q = SelftestHTTP.query([("connection", "carto_dw"), ("destination", "\(schema).\(table)"), ("filename", name)])
        let created = try expect(try http.request("POST", "/api/v3/imports?" + q, token: token, file: file), 201, "upload")
        guard let id = created["id"]?.stringValue else { throw SelftestFailure("upload answered no id") }
        return try importedRows(try finalImport(id), table: table)
    }

    func importFromURL(_ url: String, table: String) throws -> String {
        let body: JSON = ["connection": "carto_dw", "url": .string(url), "destination": .string("\(schema).\(table)")]
        let created = try expect(try http.request("POST", "/api/v3/imports", token: token, json: body), 201, "URL import")
        guard let id = created["id"]?.stringValue else { throw SelftestFailure("URL import answered no id") }
        return try importedRows(try finalImport(id), table: table)
    }

    func preview(_ file: String) throws -> String {
        let body = try expect(try http.request("POST", "/api/v3/imports/preview?filename=points.csv", token: token, file: file), 200, "preview")
        guard body["totalRows"]?.intValue == Self.fixtureRows, let columns = body["columns"]?.arrayValue, !columns.isEmpty else {
            throw SelftestFailure("preview: \(body.text.prefix(300))")
        }
        return "\(columns.count) columns, \(Self.fixtureRows) rows"
    }

    func batchJob() throws -> String {
        let body: JSON = ["query": .string("CREATE TABLE \(schema).batch AS SELECT 42 AS answer")]
        guard let id = try expect(try http.request("POST", "/api/v3/sql/carto_dw/job", token: oauth, json: body), 201, "job")["jobId"]?.stringValue else {
            throw SelftestFailure("no jobId")
        }
        let final = try wait("batch job \(id)") { () -> JSON? in
            let doc = try expect(try http.request("GET", "/api/v3/sql/carto_dw/job/\(id)", token: oauth), 200, "job status")
            // Not `? doc : nil`: JSON is nil-literal convertible, so that would be .null, not "not yet".
            guard ["success", "failure", "cancelled"].contains(doc["status"]?.stringValue ?? "") else { return Optional<JSON>.none }
            return doc
        }
        guard final["status"]?.stringValue == "success" else { throw SelftestFailure("job ended: \(final.text.prefix(300))") }
        guard try sql("SELECT answer FROM \(schema).batch")["answer"]?.intValue == 42 else { throw SelftestFailure("the job's table is wrong") }
        return "job \(id) created its table"
    }

    /// A tile through Varnish twice (MISS, then HIT), a write through the SQL API, and the
    /// cdn-invalidator's purge: the next request is answered by maps-api again.
    func tileCachedThenPurged() throws -> String {
        let table = "\(schema).points_csv"
        let source = try expect(try http.request("GET", "/api/v3/maps/carto_dw/table?" + SelftestHTTP.query([("name", table)]), token: token),
                                200, "source")
        guard let tilejsonURL = source["tilejson"]?["url"]?.arrayValue?.first?.stringValue else { throw SelftestFailure("no TileJSON URL") }
        let tilejson = try expect(try http.request("GET", SelftestHTTP.localPath(tilejsonURL), token: token), 200, "TileJSON")
        guard let template = tilejson["tiles"]?.arrayValue?.first?.stringValue else { throw SelftestFailure("no tile URL") }
        let tile = SelftestHTTP.localPath(template).replacingOccurrences(of: "%7Bz%7D", with: "0")
            .replacingOccurrences(of: "%7Bx%7D", with: "0").replacingOccurrences(of: "%7By%7D", with: "0")
            .replacingOccurrences(of: "{z}", with: "0").replacingOccurrences(of: "{x}", with: "0").replacingOccurrences(of: "{y}", with: "0")
        // The earlier checks' writes (imports, the batch job) queue purges of this connection that repeat for a few
        // seconds after each write (DataChange): a tile cached before the last of them ran would be purged under us.
        _ = try wait("the earlier writes' purges", seconds: 30) { () -> Bool? in
            try services.metadata.withConnection { db in
                try db.execute("SELECT count(*) FROM jobs WHERE queue = 'cdn' AND account_id = $1 AND state IN ('available', 'retryable', 'running')",
                               [accountId]).string(0, 0) == "0" ? true : nil
            }
        }
        let first = try http.request("GET", tile, token: token)
        guard first.status == 200, !first.body.isEmpty else { throw SelftestFailure("tile: HTTP \(first.status), \(first.body.count) bytes") }
        let second = try http.request("GET", tile, token: token)
        guard second.status == 200, second.header("x-cache") == "HIT" else {
            throw SelftestFailure("second request not a cache hit: X-Cache \(second.header("x-cache") ?? "none")")
        }
        try write("UPDATE \(table) SET name = name")
        let started = Date()
        _ = try wait("purge after the data change", seconds: 30) { () -> Bool? in
            let again = try http.request("GET", tile, token: token)
            return again.status == 200 && again.header("x-cache") == "MISS" ? true : nil
        }
        return String(format: "%d bytes, MISS then HIT, purged %.1f s after a write", first.body.count, Date().timeIntervalSince(started))
    }

    func publicMap() throws -> String {
        let dataset: JSON = ["id": "d1", "type": "table", "source": .string("\(schema).points_csv"), "connectionName": "carto_dw",
                             "geoColumn": "geom", "columns": ["name"]]
        let map = try expect(try http.request("POST", "/api/v3/workspace/maps", token: oauth,
                                              json: ["title": "selftest", "datasets": [dataset]]), 201, "create map")
        guard let id = map["id"]?.stringValue else { throw SelftestFailure("no map id") }
        _ = try expect(try http.request("PATCH", "/api/v3/workspace/maps/\(id)", token: oauth, json: ["privacy": "public"]), 200, "publish")
        let anonymous = try expect(try http.request("GET", "/api/v3/maps/public/\(id)"), 200, "anonymous fetch")
        guard anonymous["id"]?.stringValue == id, anonymous["token"]?.stringValue != nil else {
            throw SelftestFailure("public map: \(anonymous.text.prefix(300))")
        }
        return "map \(id) fetched without credentials"
    }

    /// An invited member removed through the workspace-api; the workspace-subscriber hands what they
    /// owned to the admin.
    func userRemoval() throws -> String {
        let member = email.replacingOccurrences(of: "@", with: "-member@")
        let invitation = try expect(try http.request("POST", "/api/v3/invitations", token: oauth,
                                                     json: ["email": .string(member), "role": "editor"]), 201, "invite")
        guard let invite = invitation["token"]?.stringValue else { throw SelftestFailure("no invitation token") }
        _ = try expect(try http.request("POST", "/api/v3/auth/invitations/accept", json: ["token": .string(invite), "password": .string(password)]),
                       201, "accept")
        let users = try expect(try http.request("GET", "/api/v3/users", token: oauth), 200, "users")
        guard let id = (users["results"]?.arrayValue ?? users.arrayValue ?? []).first(where: { $0["email"]?.stringValue == member })?["id"]?.stringValue else {
            throw SelftestFailure("the member is not listed")
        }
        let removed = try http.request("DELETE", "/api/v3/users/\(id)", token: oauth)
        guard removed.status == 204 else { throw SelftestFailure("remove: HTTP \(removed.status) \(removed.text)") }
        let result = try wait("user.removed processed") { () -> String? in
            try services.metadata.withConnection { db in
                let r = try db.execute("""
                    SELECT state, result::text FROM jobs WHERE queue = 'workspace' AND account_id = $1 AND payload::text LIKE '%' || $2 || '%'
                    ORDER BY id DESC LIMIT 1
                    """, [accountId, id])
                return r.string(0, 0) == "completed" ? (r.string(0, 1) ?? "") : nil
            }
        }
        guard let heir = admin?.id, result.contains(heir) else { throw SelftestFailure("user.removed result: \(result)") }
        return "user.removed handled, objects handed to the admin"
    }

    /// The most populous place of the installation's gazetteer, geocoded by name.
    func gazetteerPlace() throws -> (name: String, country: String) {
        try warehouse { db in
            guard try db.execute("SELECT to_regclass('carto_lds.places') IS NOT NULL").bool(0, 0) == true else {
                throw SelftestSkip("no gazetteer loaded (tessera lds load-places)")
            }
            let r = try db.execute("SELECT name, country_code FROM carto_lds.places ORDER BY population DESC NULLS LAST LIMIT 1")
            guard let name = r.string(0, 0), let cc = r.string(0, 1) else { throw SelftestSkip("the gazetteer is empty") }
            return (name, cc)
        }
    }

    func geocode() throws -> String {
        let place = try gazetteerPlace()
        let q = SelftestHTTP.query([("address", place.name), ("country", place.country)])
        let found = try expect(try http.request("GET", "/api/v3/lds/geocoding/geocode?" + q, token: token), 200, "geocode")
        guard let first = found.arrayValue?.first else { throw SelftestFailure("\(place.name) not found") }
        return "\(place.name) -> \(first.text.prefix(120))"
    }

    func geocodeTable() throws -> String {
        let place = try gazetteerPlace()
        try warehouse { db in
            let t = "\(try db.quoteIdentifier(schema)).addresses"
            try db.execute("CREATE TABLE \(t) (id serial PRIMARY KEY, city text, cc text)")
            try db.execute("INSERT INTO \(t) (city, cc) SELECT $1, $2 FROM generate_series(1, 3)", [place.name, place.country])
        }
        let body: JSON = ["connection": "carto_dw", "table": .string("\(schema).addresses"), "addressColumn": "city", "countryColumn": "cc"]
        guard let id = try expect(try http.request("POST", "/api/v3/lds/geocoding/table", token: token, json: body), 201, "geocode-table")["jobId"]?.stringValue else {
            throw SelftestFailure("no jobId")
        }
        let final = try wait("geocode-table job \(id)") { () -> JSON? in
            let doc = try expect(try http.request("GET", "/api/v3/lds/geocoding/table/\(id)", token: token), 200, "job status")
            // Not `? doc : nil`: JSON is nil-literal convertible, so that would be .null, not "not yet".
            guard ["success", "failure", "cancelled"].contains(doc["status"]?.stringValue ?? "") else { return Optional<JSON>.none }
            return doc
        }
        guard final["status"]?.stringValue == "success" else { throw SelftestFailure("job ended: \(final.text.prefix(300))") }
        let placed = try sql("SELECT count(geom)::int AS n FROM \(schema).addresses")["n"]?.intValue ?? 0
        guard placed == 3 else { throw SelftestFailure("\(placed) of 3 rows geocoded") }
        return "job \(id) placed 3 of 3 rows"
    }

    func routeAndIsoline() throws -> String {
        let ends: [String] = try warehouse { db in
            guard try db.execute("SELECT to_regclass('carto_lds.road_vertices') IS NOT NULL").bool(0, 0) == true else {
                throw SelftestSkip("no road graph loaded (tessera lds load-roads)")
            }
            let r = try db.execute("""
                (SELECT ST_X(geom) || ',' || ST_Y(geom) FROM carto_lds.road_vertices WHERE walk ORDER BY id LIMIT 1)
                UNION ALL (SELECT ST_X(geom) || ',' || ST_Y(geom) FROM carto_lds.road_vertices WHERE walk ORDER BY id DESC LIMIT 1)
                """)
            return (0..<r.rowCount).compactMap { r.string($0, 0) }
        }
        guard ends.count == 2 else { throw SelftestSkip("the road graph is empty") }
        let route = try expect(try http.request("GET", "/api/v3/lds/routing?" + SelftestHTTP.query([
            ("origin", ends[0]), ("destination", ends[1]), ("mode", "walk")]), token: token), 200, "route")
        guard route["geometry"]?["type"]?.stringValue == "LineString" else { throw SelftestFailure("route: \(route.text.prefix(300))") }
        let isolines = try expect(try http.request("GET", "/api/v3/lds/isolines?" + SelftestHTTP.query([
            ("origin", ends[0]), ("range", "600"), ("mode", "walk")]), token: token), 200, "isoline")
        guard let features = isolines["features"]?.arrayValue, !features.isEmpty else { throw SelftestFailure("isoline: \(isolines.text.prefix(300))") }
        return "route \(route["properties"]?["distance"]?.text ?? "?") m, isoline of \(features.count) feature(s)"
    }
}
