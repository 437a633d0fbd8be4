import Foundation
import HTTPKit
import Jobs
import Observability
import Platform

/// The cdn-invalidator's job handler (queue `cdn`):
/// - `purge` `{keys: [...]}`: revocations and edits (a token, a user, a connection);
/// - `data_changed` `{account, connection, table?}`: a writer changed data (queued by DataChange.record), so every cached
///   answer of that connection goes (tile URLs of new handshakes also carry a new data version).
/// Every job is sent to every cache node listed (TESSERA_VARNISH_PURGE_URL, comma-separated): with several
/// app VMs each runs its own Varnish, and whichever node's invalidator claims the job must empty them all.
/// A purge one node did not take fails the job, which the queue retries with backoff: none is dropped.
/// The retry purges every node again; a purge is idempotent, so the nodes that took it lose nothing.
/// Each node's Varnish must take purges from the others: it listens on TESSERA_VARNISH_PURGE_LISTEN and
/// admits TESSERA_VARNISH_INVALIDATORS (packaging/tessera-varnish-nodes applies both before Varnish starts).
public struct InvalidationRunner: Sendable {
    let clients: [PurgeClient]

    /// Without purge URLs (no http-cache configured) jobs complete as no-ops. An entry that is not
    /// `http://host:port` stops the program at start, not at the first purge.
    public init(purgeURLs: [String]) throws {
        clients = try purgeURLs.map { url in
            guard let client = PurgeClient(url: url) else {
                throw PurgeClient.Failure(description: "TESSERA_VARNISH_PURGE_URL: not an http://host:port endpoint: \(url)")
            }
            return client
        }
    }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        let keys: [String]
        switch job.kind {
        case "purge":
            keys = job.payload["keys"]?.arrayValue?.compactMap(\.stringValue) ?? []
        case "data_changed":
            guard let account = job.payload["account"]?.stringValue ?? job.accountId,
                  let connection = job.payload["connection"]?.stringValue else {
                throw PermanentJobError("data_changed needs account and connection")
            }
            keys = [CacheInvalidation.connection(account: account, name: connection)]
        default:
            throw PermanentJobError("unknown cdn job kind \(job.kind)")
        }
        guard !keys.isEmpty, keys.allSatisfy({ !$0.isEmpty && $0.allSatisfy { !$0.isWhitespace && $0.isASCII } }) else {
            throw PermanentJobError("no valid surrogate keys")
        }
        guard !clients.isEmpty else { return ["purged": 0, "note": "no http-cache configured"] }
        var purged = 0
        var failures: [String] = []
        // Every node is tried even when one fails, so a node that is down delays no other node's purge.
        for client in clients {
            do {
                let n = try client.purge(keys: keys)
                purged += n
                Log.info("cache_purged", [("node", "\(client.host):\(client.port)"), ("keys", keys.joined(separator: " ")), ("objects", n)])
            } catch {
                failures.append("\(client.host):\(client.port): \(error)")
            }
        }
        guard failures.isEmpty else {
            throw PurgeClient.Failure(description: "purge not taken by \(failures.count) of \(clients.count) cache nodes: " + failures.joined(separator: "; "))
        }
        return ["purged": .int(purged), "nodes": .int(clients.count), "keys": .array(keys.map { .string($0) })]
    }
}
