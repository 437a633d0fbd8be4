import Foundation
import HTTPKit
import Jobs
import Platform
import Postgres
import WorkspaceSubscriber
import XCTest

/// The workspace events end to end inside the metadata database: the producers queue them in their own
/// transaction, the subscriber's handler (run by the real Worker) applies them, and applying one again
/// changes nothing.
final class WorkspaceEventsTests: XCTestCase {
    var db: TestDatabase!
    var pool: PGPool!
    var queue: JobQueue!
    var account = "", admin = "", editor = ""

    override func setUpWithError() throws {
        db = try TestDatabase()
        pool = PGPool(conninfo: db.conninfo, size: 6)
        queue = JobQueue(pool: pool, retryBaseSeconds: 0.05)
        account = try sql("INSERT INTO accounts (name) VALUES ('org') RETURNING id")
        admin = try sql("INSERT INTO users (account_id, email, password_hash, role, created_at) VALUES ($1, 'a@x.org', 'h', 'admin', now() - interval '1 day') RETURNING id", account)
        editor = try sql("INSERT INTO users (account_id, email, password_hash, role) VALUES ($1, 'e@x.org', 'h', 'editor') RETURNING id", account)
    }

    override func tearDown() {
        pool?.drain()
        db?.drop()
    }

    @discardableResult
    func sql(_ text: String, _ parameters: String?...) throws -> String {
        try pool.withConnection { let r = try $0.execute(text, parameters); return r.rowCount > 0 ? r.string(0, 0) ?? "" : "" }
    }

    func count(_ text: String, _ parameters: String?...) throws -> Int {
        try pool.withConnection { try $0.execute(text, parameters).int(0, 0) ?? -1 }
    }

    func connection(_ name: String, owner: String) throws -> String {
        try sql("INSERT INTO connections (account_id, created_by, name, host, port, database, username) VALUES ($1, $2, $3, 'h', 5432, 'd', 'u') RETURNING id",
                account, owner, name)
    }

    func token(owner: String, grants: [(String, String)]) throws -> String {
        let json = JSON.array(grants.map { ["connection_name": .string($0.0), "source": .string($0.1)] }).text
        return try sql("INSERT INTO api_tokens (account_id, created_by, grants) VALUES ($1, $2, $3::jsonb) RETURNING id", account, owner, json)
    }

    func grantedConnections(_ token: String) throws -> [String] {
        let text = try sql("SELECT coalesce(string_agg(g->>'connection_name', ',' ORDER BY g->>'connection_name'), '') FROM api_tokens, jsonb_array_elements(grants) g WHERE id = $1", token)
        return text.isEmpty ? [] : text.split(separator: ",").map(String.init)
    }

    func purgeKeys() throws -> [String] {
        let text = try sql("SELECT coalesce(string_agg(DISTINCT k, ' ' ORDER BY k), '') FROM jobs, jsonb_array_elements_text(payload->'keys') k WHERE queue = 'cdn' AND kind = 'purge' AND k NOT LIKE 'cred:%'")
        return text.isEmpty ? [] : text.split(separator: " ").map(String.init)
    }

    func enqueue(_ event: WorkspaceEvent) throws -> Int64 {
        try XCTUnwrap(try pool.withConnection { try WorkspaceEvents.enqueue(event, on: $0) })
    }

    /// Runs the subscriber's handler under the real Worker until `ids` are final (and `expect`ed);
    /// returns their jobs.
    @discardableResult
    func process(_ ids: [Int64], expect: String = "completed") throws -> [Job] {
        var options = Worker.Options(queue: WorkspaceEvents.queue)
        options.pollInterval = 0.1
        let handler = WorkspaceEventHandler(pool: pool)
        let worker = Worker(queue: queue, conninfo: db.conninfo, options: options) { job, context in try handler.run(job, context) }
        Thread { worker.run() }.start()
        defer { worker.stop() }
        let deadline = Date().addingTimeInterval(15)
        var jobs: [Job] = []
        repeat {
            jobs = try ids.compactMap { try queue.find(id: $0) }
            if jobs.count == ids.count, jobs.allSatisfy(\.isFinal) { break }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        XCTAssertEqual(jobs.map(\.state), ids.map { _ in expect }, "errors: \(jobs.map(\.errors.text))")
        return jobs
    }

    /// Runs a completed event once more, as a redelivery would.
    func redeliver(_ id: Int64) throws -> Job {
        XCTAssertTrue(try queue.retry(id: id))
        return try process([id])[0]
    }

    func testPayloadsRoundTripAndMalformedEventsAreRefused() throws {
        let events: [WorkspaceEvent] = [
            .connectionDeleted(accountId: "a", connectionName: "c"),
            .userRemoved(accountId: "a", userId: "u", transferTo: "t"),
            .mapDeleted(accountId: "a", mapId: "m", datasets: [.init(connection: "c", source: "public.t"), .init(connection: "d", source: "SELECT 1")]),
            .datasetDeleted(accountId: "a", dataset: .init(connection: "c", source: "public.t")),
        ]
        for e in events { XCTAssertEqual(try WorkspaceEvent(kind: e.kind.rawValue, payload: e.payload), e) }
        XCTAssertThrowsError(try WorkspaceEvent(kind: "user.removed", payload: ["accountId": "a", "userId": "u"]))
        XCTAssertThrowsError(try WorkspaceEvent(kind: "map.renamed", payload: ["accountId": "a"]))
        XCTAssertThrowsError(try WorkspaceEvent(kind: "map.deleted", payload: ["accountId": "a", "mapId": "m", "datasets": [["connection": "c"]]]))
    }

    func testDeletingAConnectionQueuesItsEventInTheSameTransaction() throws {
        let id = try connection("gone", owner: editor)
        let tok = try token(owner: editor, grants: [("gone", "public.t"), ("kept", "public.u")])
        XCTAssertTrue(try ConnectionStore(pool).delete(account: account, id: id, actor: admin))
        XCTAssertEqual(try grantedConnections(tok), ["kept"], "the delete itself drops the grants")
        let events = try queue.list(queue: WorkspaceEvents.queue)
        XCTAssertEqual(events.map(\.kind), ["connection.deleted"])
        XCTAssertEqual(events[0].payload, ["accountId": .string(account), "connectionName": "gone"])
        XCTAssertFalse(try ConnectionStore(pool).delete(account: account, id: id, actor: admin))
        XCTAssertEqual(try queue.list(queue: WorkspaceEvents.queue).count, 1, "no event for a delete that deleted nothing")
    }

    func testConnectionDeletedRemovesGrantsAndPurgesItsCacheOnce() throws {
        // A deletion that did not drop the grants itself (psql, an older program): the subscriber does.
        let only = try token(owner: editor, grants: [("gone", "public.t")])
        let mixed = try token(owner: editor, grants: [("gone", "*"), ("kept", "public.u")])
        let untouched = try token(owner: editor, grants: [("kept", "public.u")])
        let event = try enqueue(.connectionDeleted(accountId: account, connectionName: "gone"))
        let job = try process([event])[0]
        XCTAssertEqual(job.result?["tokensChanged"], .int(2))
        XCTAssertEqual(try grantedConnections(only), [], "a token left without grants stays")
        XCTAssertEqual(try count("SELECT count(*) FROM api_tokens WHERE id = $1", only), 1)
        XCTAssertEqual(try grantedConnections(mixed), ["kept"])
        XCTAssertEqual(try grantedConnections(untouched), ["kept"])
        XCTAssertEqual(try purgeKeys(), ["conn:\(account):gone"])
        let purges = try count("SELECT count(*) FROM jobs WHERE queue = 'cdn' AND payload->'keys' ? $1", "conn:\(account):gone")

        // Redelivered: nothing more to remove; the cache is purged again, which is harmless.
        let again = try redeliver(event)
        XCTAssertEqual(again.result?["tokensChanged"], .int(0))
        XCTAssertEqual(try grantedConnections(mixed), ["kept"])
        XCTAssertEqual(try count("SELECT count(*) FROM jobs WHERE queue = 'cdn' AND payload->'keys' ? $1", "conn:\(account):gone"), purges * 2)
    }

    func testConnectionDeletedSparesGrantsOfAConnectionCreatedAgainUnderItsName() throws {
        let event = try enqueue(.connectionDeleted(accountId: account, connectionName: "again"))
        _ = try connection("again", owner: editor)
        let fresh = try token(owner: editor, grants: [("again", "public.t")])
        let job = try process([event])[0]
        XCTAssertEqual(job.result?["recreated"], .bool(true))
        XCTAssertEqual(try grantedConnections(fresh), ["again"])
    }

    /// Issue 11, case 2: the removed person's tokens and OAuth clients are revoked (they know the secrets),
    /// never transferred; what the organisation keeps (connections, maps and each map's own token) moves.
    func testUserRemovedCancelsTheirJobsRevokesTheirCredentialsAndMovesWhatTheyOwned() throws {
        let conn = try connection("theirs", owner: editor)
        let tok = try token(owner: editor, grants: [("theirs", "*")])
        let adminTok = try token(owner: admin, grants: [])
        try sql("INSERT INTO oauth_clients (account_id, user_id, client_id, secret_hash) VALUES ($1, $2, 'cid-e', '\\x00')", account, editor)
        let mapTok = try token(owner: editor, grants: [("theirs", "public.t")])
        let map = try sql("""
            INSERT INTO maps (id, account_id, owner_id, title, kepler_map_config, token_id)
            VALUES ('map-' || md5(random()::text), $1, $2, 'T', '{}', $3) RETURNING id
            """, account, editor, mapTok)
        func job(_ queueName: String, by user: String) throws -> Int64 {
            var j = JobQueue.NewJob(queue: queueName, kind: "x")
            j.accountId = account
            j.createdBy = user
            return try XCTUnwrap(try queue.enqueue(j))
        }
        let queued = try job("sql", by: editor)
        let running = try job("imports", by: editor)
        XCTAssertEqual(try queue.claim(queue: "imports", worker: "w", leaseSeconds: 60).map(\.id), [running])
        let adminsJob = try job("sql", by: admin)

        XCTAssertTrue(try AccountStore(pool).deleteUser(userId: editor, account: account, transferTo: admin))
        let events = try queue.list(queue: WorkspaceEvents.queue)
        XCTAssertEqual(events.map(\.kind), ["user.removed"])
        XCTAssertEqual(try count("SELECT count(*) FROM connections WHERE created_by = $1", editor), 1, "kept until the subscriber runs")
        // Credentials go in the removing transaction itself.
        XCTAssertEqual(try count("SELECT count(*) FROM api_tokens WHERE id = $1", tok), 0)
        XCTAssertEqual(try count("SELECT count(*) FROM oauth_clients WHERE client_id = 'cid-e'"), 0)
        XCTAssertEqual(try count("SELECT count(*) FROM api_tokens WHERE id = $1", mapTok), 1, "a map's token belongs to the map")

        let result = try process([events[0].id])[0].result
        XCTAssertEqual(result?["jobsCancelled"], .int(2))
        XCTAssertEqual(result?["transferredTo"], .string(admin))
        XCTAssertEqual(result?["moved"], ["connections": 1, "mapTokens": 1, "maps": 1])
        XCTAssertEqual(result?["revoked"], ["tokens": 0, "oauthClients": 0], "already revoked when the user was removed")
        XCTAssertEqual(try sql("SELECT created_by FROM connections WHERE id = $1", conn), admin)
        XCTAssertEqual(try sql("SELECT created_by FROM api_tokens WHERE id = $1", mapTok), admin)
        XCTAssertEqual(try grantedConnections(mapTok), ["theirs"], "the map's token keeps its grants")
        XCTAssertEqual(try sql("SELECT created_by FROM api_tokens WHERE id = $1", adminTok), admin)
        XCTAssertEqual(try count("SELECT count(*) FROM oauth_clients WHERE user_id = $1", admin), 0, "nothing moved to the admin")
        XCTAssertEqual(try sql("SELECT owner_id FROM maps WHERE id = $1", map), admin)
        XCTAssertEqual(try queue.find(id: queued)?.state, "cancelled")
        let stillRunning = try XCTUnwrap(try queue.find(id: running))
        XCTAssertTrue(stillRunning.cancelRequested, "a running job is stopped by its worker at the next heartbeat")
        XCTAssertEqual(try queue.find(id: adminsJob)?.state, "available", "other users' jobs are untouched")

        let again = try redeliver(events[0].id).result
        XCTAssertEqual(again?["jobsCancelled"], .int(0))
        XCTAssertEqual(again?["moved"], ["connections": 0, "mapTokens": 0, "maps": 0])
        XCTAssertEqual(try sql("SELECT created_by FROM connections WHERE id = $1", conn), admin)
    }

    func testOwnershipGoesToTheOldestAdminWhenTheHeirIsGoneToo() throws {
        let second = try sql("INSERT INTO users (account_id, email, password_hash, role) VALUES ($1, 's@x.org', 'h', 'admin') RETURNING id", account)
        let conn = try connection("theirs", owner: editor)
        let event = try enqueue(.userRemoved(accountId: account, userId: editor, transferTo: second))
        try sql("DELETE FROM users WHERE id = $1", second)
        XCTAssertEqual(try process([event])[0].result?["transferredTo"], .string(admin))
        XCTAssertEqual(try sql("SELECT created_by FROM connections WHERE id = $1", conn), admin)
        XCTAssertNil(try queue.list(queue: WorkspaceEvents.queue).first { $0.state != "completed" })
    }

    func testMapAndDatasetDeletedPurgeTheSourcesMadeFromThem() throws {
        func source(_ id: String, _ connection: String, _ definition: JSON) throws {
            try sql("INSERT INTO map_sources (id, account_id, connection_name, definition) VALUES ($1, $2, $3, $4::jsonb)",
                    id, account, connection, definition.text)
        }
        try source("tbl1", "dw", ["kind": "table", "connection": "dw", "name": "public.t"])
        try source("tbl2", "dw", ["kind": "table", "connection": "dw", "name": "public.t", "columns": ["a"]])
        try source("qry1", "dw", ["kind": "query", "connection": "dw", "q": "SELECT * FROM public.t"])
        try source("other", "dw", ["kind": "table", "connection": "dw", "name": "public.u"])
        try source("elsewhere", "dw2", ["kind": "table", "connection": "dw2", "name": "public.t"])

        let map = try enqueue(.mapDeleted(accountId: account, mapId: "m1", datasets: [
            .init(connection: "dw", source: "public.t"), .init(connection: "dw", source: "SELECT * FROM public.t")]))
        let job = try process([map])[0]
        XCTAssertEqual(job.result?["purgedKeys"], ["src:tbl1", "src:tbl2", "src:qry1"])
        XCTAssertEqual(try purgeKeys(), ["src:qry1", "src:tbl1", "src:tbl2"])

        let dataset = try enqueue(.datasetDeleted(accountId: account, dataset: .init(connection: "dw2", source: "public.t")))
        XCTAssertEqual(try process([dataset])[0].result?["purgedKeys"], ["src:elsewhere"])
        let none = try enqueue(.datasetDeleted(accountId: account, dataset: .init(connection: "dw", source: "public.nothing")))
        XCTAssertEqual(try process([none])[0].result?["purgedKeys"], .array([]))
        XCTAssertEqual(try purgeKeys(), ["src:elsewhere", "src:qry1", "src:tbl1", "src:tbl2"])
    }

    func testAMalformedEventIsDiscardedWithItsReason() throws {
        var j = JobQueue.NewJob(queue: WorkspaceEvents.queue, kind: "user.removed", payload: ["accountId": .string(account)])
        j.accountId = account
        let job = try process([try XCTUnwrap(try queue.enqueue(j))], expect: "discarded")[0]
        XCTAssertEqual(job.lastError, "user.removed event without userId")
    }
}
