import HTTPKit
@testable import MapsAPI
import Platform
import SQLKit
import XCTest

/// Every widget model's statement built from a request and the source's schema, no database.
final class ModelSQLSnapshotTests: XCTestCase {
    func model(_ model: WidgetModel, params: String, source: String = "public.places", type: String = "table",
               filters: String? = nil, spatialFilters: String? = nil, queryParameters: String? = nil,
               srids: [String: Int] = [:], user: Bool = false) throws -> ModelSQL {
        var body: [String: JSON] = ["type": .string(type), "source": .string(source), "params": try JSON.decode(params)]
        if let filters { body["filters"] = try JSON.decode(filters) }
        if let spatialFilters { body["spatialFilters"] = try JSON.decode(spatialFilters) }
        if let queryParameters { body["queryParameters"] = try JSON.decode(queryParameters) }
        let request = try ModelRequest.parse(model: model, connection: "carto_dw", Parameters(body: body))
        return try ModelSQL(request: request, schema: MapsSQLSnapshotTests.schema, srids: srids, allowsRawSQL: user)
    }

    func testFormula() throws {
        assertSnapshot(try model(.formula, params: #"{"column": "pop", "operation": "sum"}"#).formula().sql, "model_formula_sum")
        assertSnapshot(try model(.formula, params: #"{"operation": "count"}"#,
                                 filters: #"{"capital": {"in": {"values": [true]}}}"#).formula().sql, "model_formula_count_filtered")
        assertSnapshot(try model(.formula, params: #"{"column": "updated", "operation": "max"}"#).formula().sql, "model_formula_max_timestamp")
        assertSnapshot(try model(.formula, params: #"{"operation": "custom", "operationExp": "sum(pop) / count(*)"}"#, user: true)
            .formula().sql, "model_formula_custom")
        assertAPIError(try model(.formula, params: #"{"operation": "custom", "operationExp": "(SELECT 1)"}"#).formula(),
                       status: 403, code: "custom_operation_forbidden")
        // API access tokens: within the scoped-SQL allow-list, the same statement as a user's.
        XCTAssertEqual(try model(.formula, params: #"{"operation": "custom", "operationExp": "sum(pop) / count(*)"}"#).formula().sql,
                       try model(.formula, params: #"{"operation": "custom", "operationExp": "sum(pop) / count(*)"}"#, user: true).formula().sql)
    }

    func testCategory() throws {
        assertSnapshot(try model(.category, params: #"{"column": "name", "operation": "sum", "operationColumn": "pop", "othersThreshold": 3}"#)
            .category().sql, "model_category_others")
        assertSnapshot(try model(.category, params: #"{"column": "capital", "orderBy": "alphabetical_asc"}"#).category().sql,
                       "model_category_count")
    }

    func testHistogramRangeScatterplot() throws {
        assertSnapshot(try model(.histogram, params: #"{"column": "pop", "ticks": [10, 100, 1000], "operation": "count"}"#).histogram().sql,
                       "model_histogram")
        assertSnapshot(try model(.range, params: #"{"column": "founded"}"#).range().sql, "model_range_date")
        assertSnapshot(try model(.scatterplot, params: #"{"xAxisColumn": "pop", "yAxisColumn": ["pop", "pop"], "yAxisJoinOperation": "avg"}"#)
            .scatterplot().sql, "model_scatterplot")
        assertAPIError(try model(.histogram, params: #"{"column": "pop", "ticks": [3, 1]}"#).histogram(), status: 400, code: "invalid_parameter")
    }

    func testTableAndPick() throws {
        assertSnapshot(try model(.table, params: #"{"column": ["name", "geom"], "sortBy": "pop", "sortDirection": "desc", "limit": 5, "offset": 10}"#)
            .table().sql, "model_table")
        assertSnapshot(try model(.pick, params: #"{"columns": ["name", "_carto_feature_id"], "featureIds": ["abc", "def"]}"#).pick().sql,
                       "model_pick")
        assertAPIError(try model(.table, params: #"{"column": ["nope"]}"#).table(), status: 400, code: "column_not_found")
    }

    func testTimeseries() throws {
        assertSnapshot(try model(.timeseries, params: #"{"column": "updated", "stepSize": "week", "stepMultiplier": 2}"#).timeseries().sql,
                       "model_timeseries_week")
        assertSnapshot(try model(.timeseries, params: #"{"column": "founded", "stepSize": "month", "operation": "avg", "operationColumn": "pop", "splitByCategory": "name", "splitByCategoryLimit": 3}"#)
            .timeseries().sql, "model_timeseries_month_split")
        assertSnapshot(try model(.timeseries, params: #"{"column": "pop", "stepSize": "year", "splitByCategory": "name", "splitByCategoryValues": ["a", "b"]}"#)
            .timeseries().sql, "model_timeseries_year_values")
    }

    func testAggregations() throws {
        assertSnapshot(try model(.aggregations, params: #"{"aggregations": [{"column": "pop", "operation": "sum", "alias": "total"}, {"column": "*", "operation": "count"}]}"#)
            .aggregations().sql, "model_aggregations_list")
        assertSnapshot(try model(.aggregations, params: #"{"aggregations": "count(*) AS n, max(\"pop\") top"}"#).aggregations().sql,
                       "model_aggregations_token_string")
        assertSnapshot(try model(.aggregations, params: #"{"aggregations": "sum(pop) * 2 AS double"}"#, user: true).aggregations().sql,
                       "model_aggregations_user_string")
    }

    /// A query source with its own `$1`, a filter, a spatial filter in another SRID and feature ids: every
    /// part's values land in one parameter list, numbered in text order.
    func testQuerySourceWithEveryCondition() throws {
        let polygon = #"{"geom": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}"#
        let m = try model(.formula, params: #"{"column": "pop", "operation": "avg", "featureIds": ["f1"]}"#,
                          source: "SELECT * FROM places WHERE name <> $1;", type: "query",
                          filters: #"{"pop": {"between": {"values": [[1, 2]]}}}"#, spatialFilters: polygon,
                          queryParameters: #"["x"]"#, srids: ["geom": 25830])
        assertSnapshot(try m.formula().sql, "model_formula_query_all_conditions")
    }

    /// Widgets on an h3 source (hex text and bigint cell columns) with the viewport or selected cells.
    func testH3SpatialFilters() throws {
        func formula(_ spatial: String, kind: ColumnKind, mode: String? = nil) throws -> SQL {
            let schema = SourceSchema(columns: [("h3", kind), ("pop", .number)], srid: 4326)
            var body: [String: JSON] = ["type": "table", "source": "public.cells", "params": try JSON.decode(#"{"operation": "count"}"#),
                                        "spatialDataType": "h3", "spatialDataColumn": "h3", "spatialFilters": try JSON.decode(spatial)]
            if let mode { body["spatialFiltersMode"] = .string(mode) }
            let request = try ModelRequest.parse(model: .formula, connection: "carto_dw", Parameters(body: body))
            return try ModelSQL(request: request, schema: schema, srids: [:], allowsRawSQL: false).formula().sql
        }
        let viewport = #"{"h3": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}}"#
        assertSnapshot(try formula(viewport, kind: .string), "model_h3_viewport_intersects")
        assertSnapshot(try formula(viewport, kind: .number, mode: "center"), "model_h3_viewport_center_bigint")
        assertSnapshot(try formula(viewport, kind: .string, mode: "contains"), "model_h3_viewport_contains")
        // 85283473fffffff in hex and as h3int (decimal): the same cell, bound as the same bigint.
        let hex = try formula(#"{"h3": {"type": "h3", "indexes": ["85283473fffffff"]}}"#, kind: .string)
        assertSnapshot(hex, "model_h3_indexes")
        let decimal = try formula(#"{"h3": {"type": "h3int", "indexes": ["599686042433355775"]}}"#, kind: .string)
        XCTAssertEqual(hex.parameters, decimal.parameters)
        XCTAssertTrue(hex.parameters.contains("{599686042433355775}"))
        for bad in [#"["85283473ffffff7"]"#, #"["4841bfffffffffff"]"#, #"[true]"#, #""85283473fffffff""#] {
            XCTAssertThrowsError(try formula(#"{"h3": {"type": "h3", "indexes": "# + bad + "}}", kind: .string), bad)
        }
    }

    /// Widgets on a quadbin source with the viewport (each spatialFiltersMode) or selected cells.
    func testQuadbinSpatialFilters() throws {
        let schema = SourceSchema(columns: [("quadbin", .number), ("pop", .number)], srid: 4326)
        func formula(_ spatial: String, mode: String? = nil) throws -> SQL {
            var body: [String: JSON] = ["type": "table", "source": "public.cells", "params": try JSON.decode(#"{"operation": "count"}"#),
                                        "spatialDataType": "quadbin", "spatialDataColumn": "quadbin", "spatialFilters": try JSON.decode(spatial)]
            if let mode { body["spatialFiltersMode"] = .string(mode) }
            let request = try ModelRequest.parse(model: .formula, connection: "carto_dw", Parameters(body: body))
            return try ModelSQL(request: request, schema: schema, srids: [:], allowsRawSQL: false).formula().sql
        }
        let viewport = #"{"quadbin": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}}"#
        assertSnapshot(try formula(viewport), "model_quadbin_viewport_intersects")
        assertSnapshot(try formula(viewport, mode: "center"), "model_quadbin_viewport_center")
        assertSnapshot(try formula(viewport, mode: "contains"), "model_quadbin_viewport_contains")
        assertSnapshot(try formula(#"{"quadbin": {"type": "quadbin", "indexes": ["4841bfffffffffff", "5206653750449537023"]}}"#),
                       "model_quadbin_indexes")
        for bad in [#"{"quadbin": {"type": "quadbin", "indexes": ["4841bffffffffff0"]}}"#,
                    #"{"quadbin": {"type": "quadbin", "indexes": "4841bfffffffffff"}}"#,
                    #"{"quadbin": {"type": "quadbin", "indexes": [12]}}"#,
                    #"{"quadbin": {"type": "s2", "indexes": []}}"#] {
            assertAPIError(try formula(bad), status: 400, code: "invalid_spatial_filter")
        }
        assertAPIError(try formula(viewport, mode: "touches"), status: 400, code: "invalid_spatial_filter")
    }
}
