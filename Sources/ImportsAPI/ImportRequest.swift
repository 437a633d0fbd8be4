import Foundation
import HTTPKit
import Platform
import SQLKit

/// What one import job does, as stored in the job payload.
struct ImportRequest: Sendable {
    enum Source: Sendable {
        /// A file the import-api stored under `uploads/` with a generated name.
        case upload(file: String, filename: String?, bytes: Int)
        case url(String)
    }

    var connection: String
    var schema: String
    var table: String
    var overwrite: Bool
    var autoguessing: Bool
    var source: Source

    /// `schema.table` as given back to users.
    var destination: String { "\(schema).\(table)" }

    var payload: JSON {
        var p: [String: JSON] = [
            "connection": .string(connection), "schema": .string(schema), "table": .string(table),
            "destination": .string(destination), "overwrite": .bool(overwrite), "autoguessing": .bool(autoguessing),
        ]
        switch source {
        case .upload(let file, let filename, let bytes):
            p["source"] = ["type": "file", "file": .string(file), "filename": .optional(filename), "bytes": .int(bytes)]
        case .url(let url):
            p["source"] = ["type": "url", "url": .string(url)]
        }
        return .object(p)
    }

    init(connection: String, schema: String, table: String, overwrite: Bool, autoguessing: Bool, source: Source) {
        self.connection = connection
        self.schema = schema
        self.table = table
        self.overwrite = overwrite
        self.autoguessing = autoguessing
        self.source = source
    }

    init(payload p: JSON) throws {
        guard let connection = p["connection"]?.stringValue, let schema = p["schema"]?.stringValue,
              let table = p["table"]?.stringValue, let source = p["source"], let type = source["type"]?.stringValue else {
            throw ImportFailure("The import job is incomplete")
        }
        self.connection = connection
        self.schema = schema
        self.table = table
        overwrite = p["overwrite"]?.boolValue ?? false
        autoguessing = p["autoguessing"]?.boolValue ?? true
        switch type {
        case "file":
            guard let file = source["file"]?.stringValue, UploadStore.isGeneratedName(file) else { throw ImportFailure("The import job is incomplete") }
            self.source = .upload(file: file, filename: source["filename"]?.stringValue, bytes: source["bytes"]?.intValue ?? 0)
        case "url":
            guard let url = source["url"]?.stringValue else { throw ImportFailure("The import job is incomplete") }
            self.source = .url(url)
        default:
            throw ImportFailure("The import job is incomplete")
        }
    }

    /// Parses `schema.table`, `table` (schema `public`) or `database.schema.table` (the database part is
    /// ignored, as CARTO FQNs carry one). Quoted parts keep their case; unquoted ones are folded.
    static func parseDestination(_ text: String) throws -> (schema: String, table: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 300, !trimmed.contains("\0") else {
            throw APIError.badRequest("destination must be schema.table", code: "invalid_destination")
        }
        let name = try QualifiedName.parameter(trimmed, named: "destination", code: "invalid_destination")
        guard name.schemaOrPublic.utf8.count <= 63, name.table.utf8.count <= 63 else {
            throw APIError.badRequest("destination must be schema.table (each name at most 63 bytes)", code: "invalid_destination")
        }
        if name.table.hasPrefix("tessera_import_") {
            throw APIError.badRequest("Table names starting with tessera_import_ are reserved", code: "invalid_destination")
        }
        return (name.schemaOrPublic, name.table)
    }

    /// A destination table name from an uploaded file's name: CARTO-style (lower case, `_` for the rest).
    static func tableName(fromFilename name: String) -> String? {
        var base = (name as NSString).lastPathComponent
        if let dot = base.lastIndex(of: "."), dot != base.startIndex { base = String(base[..<dot]) }
        guard base.unicodeScalars.contains(where: { $0.isASCII && CharacterSet.alphanumerics.contains($0) }) else { return nil }
        return ColumnNames.sanitize(base)
    }
}
