import Foundation
import HTTPKit
import Jobs
import Observability
import Platform

/// The cdn-invalidator's job handler (queue `cdn`):
/// - `purge` `{keys: [...]}`: revocations and edits (a token, a user, a connection);
/// - `data_changed` `{account, connection, table}`: an import or a batch job wrote data, so every cached
///   answer of that connection goes (tile URLs of new handshakes also carry a new data version).
/// A purge Varnish did not take fails the job, which the queue retries with backoff: none is dropped.
public struct InvalidationRunner: Sendable {
    let client: PurgeClient?

    /// Without a purge URL (no http-cache configured) jobs complete as no-ops.
    public init(purgeURL: String) { client = purgeURL.isEmpty ? nil : PurgeClient(url: purgeURL) }

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
        guard let client else { return ["purged": 0, "note": "no http-cache configured"] }
        let purged = try client.purge(keys: keys)
        Log.info("cache_purged", [("keys", keys.joined(separator: " ")), ("objects", purged)])
        return ["purged": .int(purged), "keys": .array(keys.map { .string($0) })]
    }
}
