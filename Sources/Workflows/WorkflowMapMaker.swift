/// Makes the Builder map of a create_map node. Builder's maps live in workspace-api (which depends on this
/// module), so the sql-worker hands the runner one; the runner only decides when a map is made or kept.
public protocol WorkflowMapMaker: Sendable {
    /// The id of a map owned by `owner` that shows `table` of `connection`: `existing` when that map still
    /// exists (later runs refresh the table it shows), else a new one titled `title`.
    func map(account: String, owner: String, title: String, connection: String, table: String, geoColumn: String,
             existing: String?) throws -> String
}
