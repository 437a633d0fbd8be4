import Foundation
import HTTPKit
import Platform

/// The widget models of contract §5 (`/api/v3/sql/{connection}/model/{model}`).
enum WidgetModel: String, Sendable, CaseIterable {
    case formula, category, histogram, range, table, timeseries, scatterplot, aggregations, pick
}

/// One model request: the source it reads (table or query, filters), the spatial restrictions and the
/// model's own `params`. Parsed from GET strings or a POST JSON body alike; unknown parameters
/// (`client`, `v`, tags…) are ignored.
struct ModelRequest: Sendable {
    static let maxSourceBytes = 1 << 20
    static let maxFeatureIds = 1000
    /// GeoJSON positions accepted in one request's spatial filters.
    static let maxSpatialPositions = 100_000

    var model: WidgetModel
    var definition: SourceDefinition
    /// `{"<column>": Polygon|MultiPolygon | {type, indexes}}`, validated; empty when none.
    var spatialFilters: [(column: String, filter: SpatialFilter)] = []
    /// How a polygon selects the cells of a spatial-index column (the client's `spatialFiltersMode`).
    var spatialFiltersMode: SpatialFilterMode = .intersects
    var params: ModelParams

    static func parse(model: WidgetModel, connection: String, _ p: Parameters) throws -> ModelRequest {
        guard let type = p.string("type"), !type.isEmpty else {
            throw APIError.badRequest("Missing required parameter: type (table or query)", code: "missing_parameter")
        }
        guard let kind = SourceDefinition.Kind(rawValue: type), kind != .tileset else {
            throw APIError.badRequest(type == "tileset" || type == "raster"
                ? "Widget models are not available for \(type) sources (their widgets are computed from tiles)"
                : "type must be table or query", code: "invalid_parameter")
        }
        guard let source = p.string("source"), source.utf8.contains(where: { $0 > 32 }) else {
            throw APIError.badRequest("Missing required parameter: source", code: "missing_parameter")
        }
        guard source.utf8.count <= maxSourceBytes, !source.contains("\0") else {
            throw APIError.badRequest("source is too long or contains NUL characters", code: "invalid_parameter")
        }
        var d = SourceDefinition(kind: kind, connection: connection)
        if kind == .table {
            guard source.count <= 512 else { throw APIError.badRequest("Invalid table name", code: "invalid_source") }
            d.name = source
        } else {
            d.sql = source
            d.queryParameters = try QueryParameters.positional(try p.json("queryParameters"))
        }
        if let filters = try p.json("filters"), !filters.isNull {
            if case .string(let s) = filters, s.isEmpty {} else {
                try FilterSQL.validate(filters)
                if filters.objectValue?.isEmpty == false { d.filters = filters }
            }
        }
        if let op = p.string("filtersLogicalOperator"), !op.isEmpty {
            guard ["and", "or"].contains(op.lowercased()) else {
                throw APIError.badRequest("filtersLogicalOperator must be and or or", code: "invalid_parameter")
            }
            d.filtersOr = op.lowercased() == "or"
        }
        var spatialType = "geo"
        if let t = p.string("spatialDataType"), !t.isEmpty {
            guard ["geo", "h3", "quadbin", "trajectory"].contains(t) else {
                throw APIError.badRequest("spatialDataType must be geo, h3, quadbin or trajectory", code: "invalid_parameter")
            }
            spatialType = t
            if let st = SourceDefinition.SpatialType(rawValue: t) { d.spatialType = st }
        }
        if let c = p.string("spatialDataColumn"), !c.isEmpty {
            guard c.count <= 256 else { throw APIError.badRequest("spatialDataColumn is too long", code: "invalid_parameter") }
            d.spatialColumn = c
        } else if spatialType != "geo" && spatialType != "trajectory" {
            d.spatialColumn = spatialType
        }
        var request = ModelRequest(model: model, definition: d, params: try ModelParams.parse(try p.json("params")))
        if let filters = try p.json("spatialFilters"), !filters.isNull {
            if case .string(let s) = filters, s.isEmpty {} else {
                request.spatialFilters = try parseSpatialFilters(filters, spatialType: spatialType)
            }
        }
        if let mode = p.string("spatialFiltersMode"), !mode.isEmpty {
            guard let m = SpatialFilterMode(rawValue: mode) else {
                throw invalidSpatial("spatialFiltersMode must be center, intersects or contains")
            }
            request.spatialFiltersMode = m
        }
        return request
    }

    /// GeoJSON Polygon / MultiPolygon, or (on quadbin / h3 sources) `{type: "quadbin" | "h3" | "h3int", indexes: [...]}`: the
    /// structure is checked here so that a malformed shape or cell id is a 400 rather than a PostGIS error.
    static func parseSpatialFilters(_ json: JSON, spatialType: String) throws -> [(column: String, filter: SpatialFilter)] {
        guard let object = json.objectValue else {
            throw invalidSpatial("spatialFilters must be an object {\"<column>\": <GeoJSON Polygon or MultiPolygon>}")
        }
        guard object.count <= 8 else { throw invalidSpatial("Too many spatial filters") }
        var positions = 0
        var out: [(column: String, filter: SpatialFilter)] = []
        for column in object.keys.sorted() {
            let shape = object[column]!
            if let indexes = shape["indexes"] {
                out.append((column, try SpatialFilter.cells(shape["type"]?.stringValue, indexes, spatialType: spatialType)))
                continue
            }
            guard let type = shape["type"]?.stringValue, let coordinates = shape["coordinates"]?.arrayValue else {
                throw invalidSpatial("spatial filter on \(column) must be a GeoJSON Polygon or MultiPolygon")
            }
            switch type {
            case "Polygon":
                try checkPolygon(coordinates, &positions)
            case "MultiPolygon":
                guard !coordinates.isEmpty else { throw invalidSpatial("MultiPolygon has no polygons") }
                for polygon in coordinates {
                    guard let rings = polygon.arrayValue else { throw invalidSpatial("MultiPolygon coordinates must be polygons") }
                    try checkPolygon(rings, &positions)
                }
            default:
                throw invalidSpatial("spatial filter on \(column) must be a GeoJSON Polygon or MultiPolygon, not \(type)")
            }
            // Re-encoded from the parsed value: only `type` and `coordinates` reach PostGIS.
            out.append((column, .shape(JSON.object(["type": .string(type), "coordinates": .array(coordinates)]).text)))
        }
        return out
    }

    static func checkPolygon(_ rings: [JSON], _ positions: inout Int) throws {
        guard !rings.isEmpty else { throw invalidSpatial("Polygon has no rings") }
        for ring in rings {
            guard let points = ring.arrayValue, points.count >= 4 else {
                throw invalidSpatial("Polygon rings need at least 4 positions")
            }
            for point in points {
                guard let xy = point.arrayValue, (2...3).contains(xy.count),
                      xy.allSatisfy({ $0.doubleValue.map { $0.isFinite } ?? false }) else {
                    throw invalidSpatial("GeoJSON positions must be [longitude, latitude]")
                }
            }
            guard points.first == points.last else { throw invalidSpatial("Polygon rings must be closed") }
            positions += points.count
            guard positions <= maxSpatialPositions else { throw invalidSpatial("spatialFilters has too many positions") }
        }
    }

    static func invalidSpatial(_ message: String) -> APIError {
        APIError.badRequest(message, code: "invalid_spatial_filter")
    }
}

/// A model's `params` object with typed, validated accessors (400 with the parameter's name otherwise).
struct ModelParams: Sendable {
    let values: [String: JSON]

    static func parse(_ json: JSON?) throws -> ModelParams {
        guard let json, !json.isNull else { return ModelParams(values: [:]) }
        if case .string(let s) = json, s.isEmpty { return ModelParams(values: [:]) }
        guard let object = json.objectValue else { throw invalid("params must be a JSON object") }
        return ModelParams(values: object)
    }

    static func invalid(_ message: String) -> APIError { APIError.badRequest(message, code: "invalid_parameter") }

    func has(_ key: String) -> Bool { values[key].map { !$0.isNull } ?? false }

    func string(_ key: String) throws -> String? {
        guard let v = values[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw Self.invalid("params.\(key) must be a string") }
        guard s.utf8.count <= 4096, !s.contains("\0") else { throw Self.invalid("params.\(key) is too long or contains NUL characters") }
        return s
    }

    func requiredString(_ key: String) throws -> String {
        guard let s = try string(key), !s.isEmpty else { throw Self.invalid("Missing required parameter: params.\(key)") }
        return s
    }

    /// An integer (JSON number or numeric string) within `range`; values above `cap` are lowered to it.
    func int(_ key: String, default value: Int, min: Int = 0, cap: Int = Int.max) throws -> Int {
        guard let v = values[key], !v.isNull else { return value }
        let n: Int?
        switch v {
        case .number(let d): n = d.rounded() == d && abs(d) < 9.0e15 ? Int(d) : nil
        case .string(let s): n = s.isEmpty ? value : Int(s)
        default: n = nil
        }
        guard let n, n >= min else { throw Self.invalid("params.\(key) must be an integer ≥ \(min)") }
        return Swift.min(n, cap)
    }

    /// A list of strings (a lone string counts as a one-element list).
    func strings(_ key: String, max: Int) throws -> [String]? {
        guard let v = values[key], !v.isNull else { return nil }
        if let s = v.stringValue { return [s] }
        guard let items = v.arrayValue else { throw Self.invalid("params.\(key) must be an array of strings") }
        guard items.count <= max else { throw Self.invalid("params.\(key) has more than \(max) items") }
        return try items.map {
            guard let s = $0.stringValue, s.utf8.count <= 4096, !s.contains("\0") else {
                throw Self.invalid("params.\(key) must be an array of strings")
            }
            return s
        }
    }

    func numbers(_ key: String, max: Int) throws -> [Double]? {
        guard let v = values[key], !v.isNull else { return nil }
        guard let items = v.arrayValue else { throw Self.invalid("params.\(key) must be an array of numbers") }
        guard items.count <= max else { throw Self.invalid("params.\(key) has more than \(max) values") }
        return try items.map {
            guard let d = $0.doubleValue, d.isFinite else { throw Self.invalid("params.\(key) must be an array of numbers") }
            return d
        }
    }
}
