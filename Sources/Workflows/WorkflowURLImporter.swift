import Jobs

/// Loads a file from a URL for an import_url node with the URL imports' machinery (SSRF guard, size and
/// time limits, format detection, ogr2ogr), which lives in the Imports API's module (it depends on this
/// one), so the sql-worker hands the runner an implementation.
public protocol WorkflowURLImporter: Sendable {
    /// Creates `schema.table` in the connection's warehouse from the file at `url` (its first non-empty
    /// layer; `geom` in EPSG:4326 and `cartodb_id` like any import) and returns its row count. A table of
    /// that name a dead attempt left is replaced; on failure nothing is left. Bad input is an `APIError` 4xx.
    func load(url: String, account: String, connection: String, schema: String, table: String, context: JobContext) throws -> Int
}
