import Observability
import Platform

/// THE call site for workspace events about deletions (cache purge of a map's or a connection's
/// responses). `WorkspaceEvents` (Platform) is being added on branch `broker`; until it is merged these
/// only log.
/// LEAD: after merging `broker`, enqueue the event here (one line each), e.g.
///   try? WorkspaceEvents.enqueue(.mapDeleted(id: mapId), account: account, pool: services.metadata)
enum WorkspaceEventHook {
    static func mapDeleted(_ services: Services, account: String, mapId: String, requestId: String) {
        Log.info("workspace_event", [("event", "map_deleted"), ("map_id", mapId), ("request_id", requestId)])
    }

    static func connectionDeleted(_ services: Services, account: String, connectionName: String, requestId: String) {
        Log.info("workspace_event", [("event", "connection_deleted"), ("connection", connectionName), ("request_id", requestId)])
    }
}
