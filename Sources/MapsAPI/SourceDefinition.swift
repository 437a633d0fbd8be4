import CryptoSupport
import Foundation
import HTTPKit
import Platform

/// A Maps API source as instantiated by the handshake: everything needed to build its tiles, stored
/// server-side under a short id derived from its content.
struct SourceDefinition: Sendable, Equatable {
    enum Kind: String, Sendable { case table, query, tileset, raster, boundary }
    enum SpatialType: String, Sendable {
        case geo, quadbin, h3
        /// Points of moving objects (@carto/api-client's trajectory sources, deck.gl's TrajectoryTileLayer):
        /// tiled as geo points, with the trajectory id and the timestamp (epoch milliseconds, as the range model) always in the tiles.
        case trajectory
        /// The spatial index of an aggregated source.
        var index: CellIndex? { CellIndex(rawValue: rawValue) }
    }

    var kind: Kind
    var connection: String
    /// Table or tileset name (table/tileset kinds).
    var name: String?
    /// SQL text (query kind).
    var sql: String?
    var queryParameters: [String?] = []
    var spatialColumn = "geom"
    var spatialType: SpatialType = .geo
    var columns: [String]?
    var filters: JSON?
    var filtersOr = false
    var tileResolution = 0.5
    var aggregationExp: String?
    var aggregationResLevel: Int?
    /// The finest cells a dynamically aggregated point source is grouped into (the client's
    /// `spatialIndexReferenceResolution`); the index's finest resolution when absent.
    var spatialIndexReferenceResolution: Int?
    /// `_carto_bbox` on polygon features (the client's `prepareLabels`).
    var featureBbox = false
    var trajectoryIdColumn: String?
    /// Boundary sources: `name` is the boundary (geometry) table, joined on `BoundarySource.joinColumn` with
    /// this properties table or with the properties query in `sql`.
    var propertiesTable: String?
    /// Boundary sources whose `name` is a pre-generated boundary tileset (`BoundaryTileset`), not a table;
    /// decided by the handshake, never sent by the client.
    var boundaryTileset = false
    var timestampColumn: String?
    /// `thinningOrder=<numeric column>[:asc|:desc]` (Tessera's own): which features low-zoom tiles of a dense
    /// point source keep first (descending unless `:asc`); without it a stable, spatially uniform choice.
    var thinningOrder: ThinningOrder?

    struct ThinningOrder: Sendable, Equatable {
        var name: String
        var descending = true
    }

    static let resolutions: [Double] = [0.25, 0.5, 1, 2, 4]

    /// Reads CARTO's handshake parameters (GET strings or POST JSON alike); unknown ones are ignored.
    static func parse(kind: Kind, connection: String, _ p: Parameters) throws -> SourceDefinition {
        var d = SourceDefinition(kind: kind, connection: connection)
        switch kind {
        case .table, .tileset, .raster:
            guard let name = p.string("name"), !name.isEmpty, name.count <= 512 else {
                throw APIError.badRequest("Missing required parameter: name", code: "missing_parameter")
            }
            d.name = name
        case .boundary:
            guard let name = p.string("tilesetTableName"), !name.isEmpty, name.count <= 512 else {
                throw APIError.badRequest("Missing required parameter: tilesetTableName", code: "missing_parameter")
            }
            d.name = name
            if let table = p.string("propertiesTableName"), !table.isEmpty {
                guard table.count <= 512 else { throw APIError.badRequest("propertiesTableName is too long", code: "invalid_parameter") }
                d.propertiesTable = table
            } else if let q = p.string("propertiesSqlQuery"), q.utf8.contains(where: { $0 > 32 }) {
                d.sql = q
                d.queryParameters = try QueryParameters.positional(try p.json("queryParameters"))
            } else {
                throw APIError.badRequest("Missing required parameter: propertiesTableName or propertiesSqlQuery", code: "missing_parameter")
            }
        case .query:
            guard let q = p.string("q"), q.utf8.contains(where: { $0 > 32 }) else {
                throw APIError.badRequest("Missing required parameter: q", code: "missing_parameter")
            }
            d.sql = q
            d.queryParameters = try QueryParameters.positional(try p.json("queryParameters"))
        }
        if p.has("geo_column") {
            throw APIError.badRequest("geo_column is not supported in v3.3+; use spatialDataColumn and spatialDataType", code: "invalid_parameter")
        }
        if let type = p.string("spatialDataType"), !type.isEmpty {
            guard let t = SpatialType(rawValue: type) else {
                throw APIError.badRequest("spatialDataType must be geo, quadbin, h3 or trajectory", code: "invalid_parameter")
            }
            d.spatialType = t
        }
        d.spatialColumn = p.string("spatialDataColumn").flatMap { $0.isEmpty ? nil : $0 } ?? (d.spatialType.index?.rawValue ?? "geom")
        if let columns = p.string("columns"), !columns.isEmpty {
            let list: [String]
            if let array = try? p.json("columns")?.arrayValue { list = array.compactMap(\.stringValue) } else {
                list = columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            }
            guard !list.isEmpty, list.count <= 500 else { throw APIError.badRequest("Invalid columns", code: "invalid_parameter") }
            d.columns = list
        }
        if let filters = try p.json("filters"), !filters.isNull {
            try FilterSQL.validate(filters)
            if filters.objectValue?.isEmpty == false { d.filters = filters }
        }
        if let op = p.string("filtersLogicalOperator") {
            guard ["and", "or"].contains(op.lowercased()) else {
                throw APIError.badRequest("filtersLogicalOperator must be and or or", code: "invalid_parameter")
            }
            d.filtersOr = op.lowercased() == "or"
        }
        d.featureBbox = p.bool("featureBbox") ?? false
        if let r = p.string("tileResolution"), !r.isEmpty {
            guard let value = Double(r), resolutions.contains(value) else {
                throw APIError.badRequest("tileResolution must be one of 0.25, 0.5, 1, 2, 4", code: "invalid_parameter")
            }
            d.tileResolution = value
        }
        if let exp = p.string("aggregationExp"), !exp.isEmpty {
            guard exp.utf8.count <= 4096 else { throw APIError.badRequest("aggregationExp is too long", code: "invalid_parameter") }
            d.aggregationExp = AggregationExpression.preservingAliasCase(exp)
        }
        if let level = try p.int("aggregationResLevel") {
            guard (0...16).contains(level) else {
                throw APIError.badRequest("aggregationResLevel must be 0-16", code: "invalid_parameter")
            }
            d.aggregationResLevel = level
        }
        if let order = p.string("thinningOrder"), !order.isEmpty {
            var name = order, descending = true
            if let colon = order.lastIndex(of: ":"), ["asc", "desc"].contains(order[order.index(after: colon)...].lowercased()) {
                descending = order[order.index(after: colon)...].lowercased() == "desc"
                name = String(order[..<colon])
            }
            guard !name.isEmpty, name.count <= 256 else {
                throw APIError.badRequest("thinningOrder must be a numeric column, optionally followed by :asc or :desc", code: "invalid_parameter")
            }
            d.thinningOrder = ThinningOrder(name: name, descending: descending)
        }
        if d.spatialType == .trajectory {
            for parameter in ["trajectoryIdColumn", "timestampColumn"] {
                guard let column = p.string(parameter), !column.isEmpty, column.count <= 256 else {
                    throw APIError.badRequest("Missing required parameter for trajectory sources: \(parameter)", code: "missing_parameter")
                }
                if parameter == "timestampColumn" { d.timestampColumn = column } else { d.trajectoryIdColumn = column }
            }
        }
        if let index = d.spatialType.index {
            guard d.aggregationExp != nil else {
                throw APIError.badRequest("aggregationExp is required for \(index.rawValue) sources", code: "missing_parameter")
            }
            // The client's defaults (DEFAULT_AGGREGATION_RES_LEVEL_QUADBIN / _H3).
            d.aggregationResLevel = d.aggregationResLevel ?? (index == .quadbin ? 6 : 4)
            if let reference = try p.int("spatialIndexReferenceResolution") {
                guard (0...index.maxResolution).contains(reference) else {
                    throw APIError.badRequest("spatialIndexReferenceResolution must be 0-\(index.maxResolution) for \(index.rawValue)",
                                              code: "invalid_parameter")
                }
                d.spatialIndexReferenceResolution = reference
            }
        }
        return d
    }

    /// Stable JSON form: the stored definition and the input of its id.
    var json: JSON {
        var o: [String: JSON] = [
            "kind": .string(kind.rawValue), "connection": .string(connection),
            "queryParameters": .array(queryParameters.map(JSON.optional)),
            "spatialDataColumn": .string(spatialColumn), "spatialDataType": .string(spatialType.rawValue),
            "filtersOr": .bool(filtersOr), "tileResolution": .number(tileResolution),
        ]
        if let name { o["name"] = .string(name) }
        if let sql { o["q"] = .string(sql) }
        if let columns { o["columns"] = .array(columns.map { .string($0) }) }
        if let filters { o["filters"] = filters }
        if let aggregationExp { o["aggregationExp"] = .string(aggregationExp) }
        if let aggregationResLevel { o["aggregationResLevel"] = .int(aggregationResLevel) }
        if let spatialIndexReferenceResolution { o["spatialIndexReferenceResolution"] = .int(spatialIndexReferenceResolution) }
        if featureBbox { o["featureBbox"] = true }
        if let trajectoryIdColumn { o["trajectoryIdColumn"] = .string(trajectoryIdColumn) }
        if let timestampColumn { o["timestampColumn"] = .string(timestampColumn) }
        if let propertiesTable { o["propertiesTable"] = .string(propertiesTable) }
        if boundaryTileset { o["boundaryTileset"] = true }
        if let thinningOrder { o["thinningOrder"] = .string(thinningOrder.name + (thinningOrder.descending ? ":desc" : ":asc")) }
        return .object(o)
    }

    init(kind: Kind, connection: String) {
        self.kind = kind
        self.connection = connection
    }

    init(json j: JSON) throws {
        guard let kind = j["kind"]?.stringValue.flatMap(Kind.init(rawValue:)), let connection = j["connection"]?.stringValue else {
            throw JSON.DecodeError()
        }
        self.init(kind: kind, connection: connection)
        name = j["name"]?.stringValue
        sql = j["q"]?.stringValue
        queryParameters = j["queryParameters"]?.arrayValue?.map(\.stringValue) ?? []
        spatialColumn = j["spatialDataColumn"]?.stringValue ?? "geom"
        spatialType = j["spatialDataType"]?.stringValue.flatMap(SpatialType.init(rawValue:)) ?? .geo
        columns = j["columns"]?.arrayValue?.compactMap(\.stringValue)
        filters = j["filters"]
        filtersOr = j["filtersOr"]?.boolValue ?? false
        tileResolution = j["tileResolution"]?.doubleValue ?? 0.5
        aggregationExp = j["aggregationExp"]?.stringValue
        aggregationResLevel = j["aggregationResLevel"]?.intValue
        spatialIndexReferenceResolution = j["spatialIndexReferenceResolution"]?.intValue
        featureBbox = j["featureBbox"]?.boolValue ?? false
        trajectoryIdColumn = j["trajectoryIdColumn"]?.stringValue
        timestampColumn = j["timestampColumn"]?.stringValue
        propertiesTable = j["propertiesTable"]?.stringValue
        boundaryTileset = j["boundaryTileset"]?.boolValue ?? false
        if let order = j["thinningOrder"]?.stringValue, let colon = order.lastIndex(of: ":") {
            thinningOrder = ThinningOrder(name: String(order[..<colon]), descending: order[order.index(after: colon)...] == "desc")
        }
    }

    /// A short, URL-safe id: the hash of the account and the canonical definition.
    func id(account: String) -> String {
        String(Encoding.base64URL(Crypto.sha256(Array((account + "\n" + json.text).utf8))).prefix(22))
    }

    /// The properties a tile must carry: the requested columns plus, for trajectories, the id and timestamp
    /// columns the TrajectoryTileLayer groups and animates by.
    var tileColumns: [String]? {
        guard var columns, spatialType == .trajectory else { return columns }
        for c in [trajectoryIdColumn, timestampColumn].compactMap({ $0 }) where !columns.contains(c) { columns.append(c) }
        return columns
    }

    /// The extent of the MVT grid (tileResolution 0.25…4 → 256…4096).
    var extent: Int { Int(1024 * tileResolution) }
}

