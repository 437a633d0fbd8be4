import HTTPKit
@testable import MapsAPI
import SQLKit
import XCTest

/// Trajectory sources: the tile statement always carries the id and the timestamp (epoch ms).
final class TrajectorySQLTests: XCTestCase {
    func testTrajectoryTileSQLSnapshot() throws {
        var d = SourceDefinition(kind: .table, connection: "carto_dw")
        d.name = "public.trips"
        d.spatialType = .trajectory
        d.trajectoryIdColumn = "trip_id"
        d.timestampColumn = "ts"
        d.columns = ["speed"]
        XCTAssertEqual(d.tileColumns, ["speed", "trip_id", "ts"])
        let schema = SourceSchema(columns: [("geom", .geometry), ("trip_id", .number), ("ts", .timestamp), ("speed", .number),
                                            ("label", .string)], srid: 4326)
        let record = SourceRecord(id: "t1", definition: d, schema: schema, geometryType: "POINT", extent: [-1, -1, 1, 1])
        assertSnapshot(try TileSQL.make(record, mode: .fast).sql, "tile_trajectory_fast")
    }
}

/// Boundary sources: the boundary table joined with a properties table or query on geoid.
final class BoundarySQLTests: XCTestCase {
    func testBoundaryFromSnapshots() throws {
        var d = SourceDefinition(kind: .boundary, connection: "carto_dw")
        d.name = "public.counties"
        d.propertiesTable = "stats.county props"
        assertSnapshot(try SourceSQL.from(d), "boundary_from_table")
        d.propertiesTable = nil
        d.sql = "SELECT * FROM stats.props WHERE year = $1;"
        d.queryParameters = ["2024"]
        assertSnapshot(try SourceSQL.from(d), "boundary_from_query")
        d.name = "bad..name"
        XCTAssertThrowsError(try SourceSQL.from(d))
    }
}
