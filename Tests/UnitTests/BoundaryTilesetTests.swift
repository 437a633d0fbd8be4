@testable import MapsAPI
import SQLKit
import XCTest

/// The SQL of boundary tilesets (snapshots, no database).
final class BoundaryTilesetTests: XCTestCase {
    func testBoundaryTilesetSQLSnapshots() throws {
        let building = QualifiedName(schema: "public", table: "my bnd__building").identifier
        let from = QualifiedName(schema: "public", table: "counties").identifier
        assertSnapshot(BoundaryTileset.piecesSQL(into: building, from: from, geometry: try Identifier("geom"), extent: 4096, buffer: 256),
                       "boundary_tileset_pieces")
        let filter: SQL = "_src.\(try Identifier("region")) = \("west")"
        assertSnapshot(try BoundaryTileset.tileSQL(tileset: QualifiedName(schema: "public", table: "my bnd"), properties: from,
                                                   columns: ["geoid", "population"], filter: filter, extent: 4096), "boundary_tileset_tile")
    }
}
