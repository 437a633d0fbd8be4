/// The one table mapping a PostgreSQL SQLSTATE to an HTTP status and a stable error code.
/// Status is never inferred from message text.
public enum SQLStateStatus {
    /// Exact SQLSTATEs first, then two-character classes.
    static let exact: [String: (Int, String)] = [
        "57014": (429, "statement_timeout"),      // query_canceled: statement timeout or our watchdog
        "42501": (403, "permission_denied"),      // insufficient_privilege
        "25006": (403, "read_only"),              // read_only_sql_transaction
        "23505": (409, "unique_violation"),
        "23503": (409, "foreign_key_violation"),
        "40001": (409, "serialization_failure"),
        "40P01": (409, "deadlock_detected"),
        "42P01": (404, "relation_not_found"),     // undefined_table
        "42703": (400, "column_not_found"),       // undefined_column
        "08P01": (400, "invalid_parameters"),     // protocol_violation: wrong number of bound parameters
        "57P01": (503, "database_shutdown"),      // admin_shutdown
        "57P02": (503, "database_shutdown"),      // crash_shutdown
        "57P03": (503, "database_starting"),      // cannot_connect_now
        "53300": (503, "too_many_connections"),
        "54000": (400, "program_limit_exceeded"),
        "TH301": (400, "h3_too_many_cells"),      // tessera_h3: polyfill/children past their max_cells bound
    ]
    static let classes: [String: (Int, String)] = [
        "08": (503, "database_unavailable"),      // connection exception
        "28": (503, "warehouse_authentication_failed"),
        "3D": (503, "database_not_found"),
        "53": (503, "insufficient_resources"),
        "0A": (400, "feature_not_supported"),
        "21": (400, "cardinality_violation"),
        "22": (400, "invalid_data"),
        "23": (400, "integrity_violation"),
        "26": (400, "invalid_statement"),
        "2B": (400, "invalid_statement"),
        "34": (400, "invalid_cursor"),
        "3F": (400, "invalid_schema"),
        "42": (400, "invalid_query"),             // syntax error or access rule violation
        "44": (400, "check_option_violation"),
        "P0": (400, "raised_exception"),
        "25": (400, "invalid_transaction_state"),
    ]

    /// Status and code for a SQLSTATE; unknown classes are server errors.
    public static func map(_ sqlstate: String?) -> (status: Int, code: String) {
        guard let state = sqlstate, state.count == 5 else { return (500, "database_error") }
        if let hit = exact[state] { return hit }
        if let hit = classes[String(state.prefix(2))] { return hit }
        return (500, "database_error")
    }
}
