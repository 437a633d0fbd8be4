import Foundation
import HTTPKit
import Postgres
import SQLKit

/// The warehouse role is shared by every principal of a connection, so PostgreSQL itself lets any of its
/// sessions read the others' SQL (`pg_stat_activity`) and signal them (`pg_terminate_backend`). In a
/// read-only session (viewers, scoped and map tokens, cookie GETs) user SQL is planned first and refused
/// when the plan reaches one of these functions, directly, through a view, or through dynamic SQL that
/// would hide them from the plan.
public enum ReadOnlyGuard {
    static let denied: [String] = [
        "pg_stat_get_activity", "pg_stat_get_backend_activity", "pg_stat_get_backend_idset", "pg_stat_get_backend_pid",
        "pg_stat_get_backend_userid", "pg_stat_get_backend_client_addr", "pg_stat_get_backend_wait_event",
        "pg_stat_get_backend_activity_start", "pg_stat_get_backend_xact_start", "pg_stat_statements",
        "pg_terminate_backend", "pg_cancel_backend", "pg_signal_backend", "pg_blocking_pids", "pg_safe_snapshot_blocking_pids",
        "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
        "dblink", "dblink_exec", "dblink_send_query", "dblink_open",
    ]

    /// Whether an EXPLAIN VERBOSE text names a denied function (as a call or a function scan).
    static func deniedName(inPlan text: String) -> String? {
        let lower = text.lowercased()
        return denied.first { name in
            var searchRange = lower.startIndex..<lower.endIndex
            while let hit = lower.range(of: name, range: searchRange) {
                let before = hit.lowerBound == lower.startIndex ? nil : lower[lower.index(before: hit.lowerBound)]
                let after = hit.upperBound == lower.endIndex ? nil : lower[hit.upperBound]
                func isWord(_ c: Character?) -> Bool { c.map { $0.isLetter || $0.isNumber || $0 == "_" } ?? false }
                if !isWord(before), !isWord(after) { return true }
                searchRange = hit.upperBound..<lower.endIndex
            }
            return false
        }
    }

    /// Statements EXPLAIN accepts, so their plan can be checked.
    static let explainable: Set<String> = ["select", "with", "values", "table", "execute", "declare", "insert", "update", "delete", "merge"]
    /// Statements that run code a plan does not show (or, for EXPLAIN ANALYZE, run the statement).
    static let refused: Set<String> = ["do", "call", "explain", "copy"]

    /// The first keyword of a statement (SQLKit's).
    static func leadingKeyword(_ sql: String) -> String { SQLKit.leadingKeyword(sql) }

    /// Refuses `sql` in a read-only session when its plan reaches a denied function; free otherwise.
    public static func check(_ sql: String, _ parameters: [String?], connection: PGConnection, watch: PGConnection.Watch) throws {
        guard connection.sessionMode == .readOnly else { return }
        let keyword = leadingKeyword(sql)
        if refused.contains(keyword) {
            throw APIError.forbidden("\(keyword.uppercased()) is not available to read-only credentials", code: "statement_not_allowed")
        }
        guard explainable.contains(keyword) else { return }
        let explain = "EXPLAIN (VERBOSE, FORMAT JSON) "
        let plan: PGResult
        do {
            plan = try connection.execute(explain + sql, parameters, watch: watch)
        } catch var e as PGError {
            // The position the server names is in the EXPLAIN text; the client's is in its own.
            e.position = e.position.map { $0 > explain.count ? $0 - explain.count : $0 }
            throw e
        }
        if let name = deniedName(inPlan: plan.string(0, 0) ?? "") {
            throw APIError.forbidden("\(name) is not available to read-only credentials", code: "function_not_allowed")
        }
    }
}
