import HTTPKit
import Platform

/// The two JSON documents of a Builder map, checked so that fetchMap can read them (contract §6, §15):
/// `keplerMapConfig` (version `v1` with the objects fetchMap dereferences) and `datasets`.
enum MapDocument {
    static let datasetTypes: Set<String> = ["table", "query", "tileset"]
    static let maxDatasets = 50

    /// A new map starts with an empty world view.
    static let defaultConfig: JSON = [
        "version": "v1",
        "config": [
            "filters": [:],
            "mapState": ["latitude": 20, "longitude": 0, "zoom": .number(1.5), "bearing": 0, "pitch": 0],
            "mapStyle": ["styleType": "positron", "visibleLayerGroups": [:]],
            "popupSettings": [:],
            "legendSettings": [:],
            "visState": ["layers": [], "layerBlending": "normal", "interactionConfig": [:]],
            "customBaseMaps": [:],
        ],
    ]

    static func invalid(_ message: String) -> APIError { APIError.badRequest(message, code: "invalid_map") }

    /// fetchMap throws unless these are objects and every layer has a `visualChannels` object.
    static func validateConfig(_ value: JSON) throws -> JSON {
        guard value.objectValue != nil else { throw invalid("keplerMapConfig must be an object") }
        guard value["version"]?.stringValue == "v1" else { throw invalid("keplerMapConfig.version must be \"v1\"") }
        guard let config = value["config"], config.objectValue != nil else { throw invalid("keplerMapConfig.config must be an object") }
        for key in ["mapState", "mapStyle", "visState"] where config[key]?.objectValue == nil {
            throw invalid("keplerMapConfig.config.\(key) must be an object")
        }
        if let filters = config["filters"], filters.objectValue == nil && filters.arrayValue == nil {
            throw invalid("keplerMapConfig.config.filters must be an object or an array")
        }
        if let parameters = config["parameters"], !parameters.isNull { try validateParameters(parameters) }
        let layers = config["visState"]?["layers"] ?? JSON.array([])
        guard let list = layers.arrayValue else {
            throw invalid("keplerMapConfig.config.visState.layers must be an array")
        }
        for (i, layer) in list.enumerated() {
            guard layer.objectValue != nil, layer["visualChannels"]?.objectValue != nil else {
                throw invalid("keplerMapConfig.config.visState.layers[\(i)] must be an object with a visualChannels object")
            }
        }
        return value
    }

    /// Checks each dataset and fills the optional fields fetchMap reads with their defaults.
    static func validateDatasets(_ value: JSON, connections: Set<String>) throws -> JSON {
        guard let items = value.arrayValue else { throw invalid("datasets must be an array") }
        guard items.count <= maxDatasets else { throw invalid("A map has at most \(maxDatasets) datasets") }
        var seen: Set<String> = []
        let checked = try items.enumerated().map { i, item -> JSON in
            guard var o = item.objectValue else { throw invalid("datasets[\(i)] must be an object") }
            guard let id = o["id"]?.stringValue, !id.isEmpty, id.count <= 200 else { throw invalid("datasets[\(i)].id must be a non-empty string") }
            guard seen.insert(id).inserted else { throw invalid("datasets[\(i)].id \(id) is used twice") }
            guard let type = o["type"]?.stringValue, datasetTypes.contains(type) else {
                throw invalid("datasets[\(i)].type must be table, query or tileset")
            }
            guard let connection = o["connectionName"]?.stringValue, !connection.isEmpty else {
                throw invalid("datasets[\(i)].connectionName must be a connection name")
            }
            guard connections.contains(connection) else {
                throw APIError.badRequest("datasets[\(i)].connectionName: no connection named \(connection)", code: "connection_not_found")
            }
            guard let source = o["source"]?.stringValue, !source.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw invalid("datasets[\(i)].source must be a non-empty string")
            }
            // A map's token is handed to everyone who opens the map: `*` would give them the whole connection.
            if Grant(connectionName: connection, source: source).isWildcardAll {
                throw invalid("datasets[\(i)].source cannot be *: name a table or a query")
            }
            if type != "query" && Grant(connectionName: connection, source: source).isQuery {
                throw invalid("datasets[\(i)].source is SQL: use type \"query\" for it")
            }
            guard o["geoColumn"]?.stringValue != nil else { throw invalid("datasets[\(i)].geoColumn must be a string") }
            // Bound as text, positionally ($1, $2, …): anything else would fail at every handshake.
            if let qp = o["queryParameters"], !qp.isNull,
               !(qp.arrayValue?.allSatisfy({ $0.stringValue != nil || $0.isNull }) ?? false) {
                throw invalid("datasets[\(i)].queryParameters must be an array of strings")
            }
            for (key, fallback) in [("format", JSON.string("tilejson")), ("aggregationExp", .null), ("aggregationResLevel", .null),
                                    ("queryParameters", .null), ("providerId", .string("postgres"))] where o[key] == nil {
                o[key] = fallback
            }
            return .object(o)
        }
        return .array(checked)
    }

    /// The offline basemap layer (see GET /api/v3/workspace/config), drawn under every map.
    static let basemapGrant = Grant(connectionName: "carto_dw", source: "public.world_countries")
    /// The offline reference basemap (schema `basemap`, served by maps-api's `…/basemap` tiles).
    static let referenceBasemapGrant = Grant(connectionName: "carto_dw", source: "basemap.*")

    /// The grants of the map's token: exactly its datasets' sources, plus the offline basemap when the
    /// organisation has the embedded warehouse (a shared map must draw it for anonymous viewers too).
    static func grants(_ datasets: JSON, basemap: Bool) -> [Grant] {
        var grants: [Grant] = basemap ? [basemapGrant, referenceBasemapGrant] : []
        for d in datasets.arrayValue ?? [] {
            guard let c = d["connectionName"]?.stringValue, let s = d["source"]?.stringValue else { continue }
            let g = Grant(connectionName: c, source: s)
            if !g.isWildcardAll, !grants.contains(g) { grants.append(g) }
        }
        return grants
    }
}
