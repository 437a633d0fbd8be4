import HTTPKit
import Platform

/// A stored source: its definition plus what the handshake learnt (schema, geometry) so tiles need
/// no extra round trips.
struct SourceRecord: Sendable {
    let id: String
    let definition: SourceDefinition
    let schema: SourceSchema
    let geometryType: String?
    /// Resolution of the cells in a quadbin source's column.
    let dataResolution: Int?
    /// The data's bounding box in EPSG:3857 [xmin, ymin, xmax, ymax], when known.
    let extent: [Double]?
    /// The handshake's row count (an estimate for big tables): sizes the sample of an over-budget tile.
    var rows: Int?

    /// A quadbin/h3 source over a geometry column: its points are aggregated into cells per tile.
    var aggregatesPoints: Bool { definition.spatialType.index != nil && schema.kind(of: definition.spatialColumn) == .geometry }

    var metadata: JSON {
        ["schema": schema.json, "srid": .int(schema.srid), "geometryType": .optional(geometryType),
         "dataResolution": dataResolution.map(JSON.int) ?? .null, "extent": extent.map { .array($0.map(JSON.number)) } ?? .null,
         "rows": rows.map(JSON.int) ?? .null]
    }

    init(id: String, definition: SourceDefinition, schema: SourceSchema, geometryType: String?, dataResolution: Int? = nil,
         extent: [Double]? = nil) {
        self.id = id
        self.definition = definition
        self.schema = schema
        self.geometryType = geometryType
        self.dataResolution = dataResolution
        self.extent = extent
    }

    init(id: String, definition: SourceDefinition, metadata: JSON) throws {
        let columns = try (metadata["schema"]?.arrayValue ?? []).map { c -> (String, ColumnKind) in
            guard let name = c["name"]?.stringValue, let type = c["type"]?.stringValue,
                  let kind = ColumnKind.allCases.first(where: { $0.schemaType == type }) else { throw JSON.DecodeError() }
            return (name, kind)
        }
        self.init(id: id, definition: definition,
                  schema: SourceSchema(columns: columns, srid: metadata["srid"]?.intValue ?? 4326),
                  geometryType: metadata["geometryType"]?.stringValue, dataResolution: metadata["dataResolution"]?.intValue,
                  extent: metadata["extent"]?.arrayValue?.compactMap(\.doubleValue).count == 4
                      ? metadata["extent"]!.arrayValue!.compactMap(\.doubleValue) : nil)
        rows = metadata["rows"]?.intValue
    }
}
