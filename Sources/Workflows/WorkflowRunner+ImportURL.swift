import Foundation
import HTTPKit
import Jobs
import Postgres
import SQLKit

extension WorkflowRunner {
    /// import_url: the importer loads the file into `<table>__load`, which is renamed to the node's table (named
    /// by the hash of the URL) with its row count in one transaction, so a killed run finds either no table
    /// (and loads again, replacing the half-loaded one) or the whole table (and reuses it).
    func importURL(_ node: WorkflowDocument.Node, compiler: Compiler, schema: Identifier, table: Identifier, account: String,
                   run: RunRow, context: JobContext, on db: PGConnection) throws -> Int {
        guard let imports else { throw WorkflowError.invalid("this worker cannot import files", node: node.id, parameter: "type") }
        let url = try compiler.requiredString("url")
        let loading = try Identifier(String(table.name.prefix(50)) + "__load")
        let rows = try imports.load(url: url, account: account, connection: run.connection, schema: schema.name, table: loading.name,
                                    context: context)
        try db.execute("BEGIN")
        do {
            try db.execute("ALTER TABLE \(schema).\(loading) RENAME TO \(table)")
            let note: JSON = ["rows": .int(rows), "created": .number(Date().timeIntervalSince1970.rounded(.down)), "url": .string(url)]
            try db.execute("COMMENT ON TABLE \(schema).\(table) IS \(unsafeRaw: Self.literal(note.text))")
            try db.execute("COMMIT")
        } catch {
            if db.isHealthy { _ = try? db.execute("ROLLBACK") }
            throw error
        }
        return rows
    }
}
