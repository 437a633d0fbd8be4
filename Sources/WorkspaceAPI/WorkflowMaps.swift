import HTTPKit
import Platform
import Postgres
import Workflows

/// create_map's maps: an ordinary Builder map (owned by the workflow's owner, in the maps list, with its own
/// token granted the one table), made through MapStore like a map saved in Builder.
public struct WorkflowMaps: WorkflowMapMaker {
    let pool: PGPool
    public init(pool: PGPool) { self.pool = pool }

    public func map(account: String, owner: String, title: String, connection: String, table: String, geoColumn: String,
                    existing: String?) throws -> String {
        let store = MapStore(pool: pool)
        if let existing, try store.find(id: existing, account: account) != nil { return existing }
        let datasets = try MapDocument.validateDatasets(
            [["id": "workflow_result", "type": "table", "connectionName": .string(connection), "source": .string(table),
              "geoColumn": .string(geoColumn)]], connections: [connection])
        var config = MapDocument.defaultConfig
        let layer: JSON = [
            "id": "workflow_result_layer", "type": "mvt",
            "config": ["dataId": "workflow_result", "label": .string(title), "isVisible": true, "color": [47, 111, 237],
                       "columns": [:], "textLabel": [],
                       "visConfig": ["opacity": .number(0.85), "filled": true, "stroked": true, "strokeColor": [255, 255, 255],
                                     "thickness": 1, "radius": 5]],
            "visualChannels": ["colorField": .null, "colorScale": "quantize"],
        ]
        if case .object(var outer) = config, case .object(var inner)? = outer["config"], case .object(var vis)? = inner["visState"] {
            vis["layers"] = [layer]
            inner["visState"] = .object(vis)
            outer["config"] = .object(inner)
            config = .object(outer)
        }
        return try store.create(account: account, owner: owner, title: String(title.prefix(200)), description: "Made by a workflow",
                                config: config, datasets: datasets).id
    }
}
