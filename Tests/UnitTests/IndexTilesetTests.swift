@testable import MapsAPI
import SQLKit
import XCTest

/// The SQL of spatial-index tilesets (snapshots, no database).
final class IndexTilesetTests: XCTestCase {
    func testIndexTilesetSQLSnapshots() throws {
        let staging = QualifiedName(schema: "public", table: "my tiles__building").identifier
        let cells: SQL = "SELECT c AS __cell, count(*) AS n FROM t GROUP BY 1"
        assertSnapshot(IndexTilesetBuilder.insertSQL(into: staging, cells: cells, index: .h3), "index_tileset_insert_h3")
        assertSnapshot(IndexTilesetBuilder.insertSQL(into: staging, cells: cells, index: .quadbin), "index_tileset_insert_quadbin")
        assertSnapshot(TilesetSource.cellTileSQL(QualifiedName(schema: "public", table: "my tiles")), "index_tileset_tile")
    }
}
