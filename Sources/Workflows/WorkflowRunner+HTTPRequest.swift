import Foundation
import HTTPKit
import OutboundHTTP
import Postgres

extension WorkflowRunner {
    /// http_request: POSTs the summary of its input (workflow, run, node, row count, columns, result table)
    /// as JSON, through the same SSRF guard and operator allow-list as URL imports. The run's marker is
    /// written after the server accepted it, so a resumed run does not post again (at least once, not twice
    /// for a finished post). A refused URL is a node error that is not retried; a server or network error is.
    func postSummary(_ node: WorkflowDocument.Node, rows: Int, columns: [NodeInput.Column], table: String, runId: String,
                     run: RunRow, isCancelled: () -> Bool, on db: PGConnection) throws -> Int {
        if try db.execute("SELECT 1 FROM \(Self.outputMarkers) WHERE run_id = $1 AND node = $2", [runId, node.id]).rowCount == 1 {
            return 0
        }
        let url = try Compiler(node: node, inputs: [:], variables: run.variables).requiredString("url")
        let summary: JSON = [
            "workflow": .string(run.workflow), "run": .string(runId), "node": .string(node.id), "rows": .int(rows),
            "table": .string(table),
            "columns": .array(columns.map { ["name": .string($0.name), "type": .string($0.type)] }),
        ]
        let poster = GuardedPost(guardian: URLGuard(allowlist: Set(services.config.importPrivateURLAllowlist)))
        let status: Int
        do { status = try poster.post(url, json: summary.text, isCancelled: isCancelled) } catch let e as URLRefused where e.permanent {
            throw WorkflowError.invalid(e.message, node: node.id, parameter: "url")
        }
        try db.execute("INSERT INTO \(Self.outputMarkers) (run_id, node) VALUES ($1, $2) ON CONFLICT DO NOTHING", [runId, node.id])
        return status
    }
}
