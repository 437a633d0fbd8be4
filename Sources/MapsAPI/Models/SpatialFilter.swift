import Foundation
import HTTPKit
import Platform
import SQLKit

/// One entry of a model request's `spatialFilters`: the viewport (or a drawn shape) as GeoJSON, or the cells
/// a user selected on a spatial-index layer (`{type: "quadbin", indexes: [...]}`, @carto/api-client's
/// SpatialIndexFilter).
enum SpatialFilter: Sendable {
    /// Re-encoded GeoJSON Polygon / MultiPolygon in WGS84.
    case shape(String)
    /// Quadbin cell ids; a row matches when its cell is one of them or lies inside one.
    case quadbinCells([UInt64])
    /// H3 cell ids; a row matches when its cell is one of them or a descendant of one.
    case h3Cells([UInt64])

    static let maxIndexes = 10_000

    static func cells(_ type: String?, _ indexes: JSON, spatialType: String) throws -> SpatialFilter {
        if type == "h3" || type == "h3int" {
            guard spatialType == "h3" else {
                throw ModelRequest.invalidSpatial("spatialFilters of type \(type!) need spatialDataType=h3")
            }
            guard let items = indexes.arrayValue, items.count <= maxIndexes else {
                throw ModelRequest.invalidSpatial("spatialFilters indexes must be an array of at most \(maxIndexes) cell ids")
            }
            return .h3Cells(try items.map { item in
                guard let cell = parseH3(item) else {
                    throw ModelRequest.invalidSpatial("spatialFilters indexes must be H3 cell ids (15 hexadecimal digits, or decimal integers)")
                }
                return cell
            })
        }
        guard type == "quadbin" else {
            throw ModelRequest.invalidSpatial("spatialFilters indexes need type quadbin, h3 or h3int")
        }
        guard spatialType == "quadbin" else {
            throw ModelRequest.invalidSpatial("spatialFilters of type quadbin need spatialDataType=quadbin")
        }
        guard let items = indexes.arrayValue, items.count <= maxIndexes else {
            throw ModelRequest.invalidSpatial("spatialFilters indexes must be an array of at most \(maxIndexes) cell ids")
        }
        return .quadbinCells(try items.map { item in
            guard let text = item.stringValue, let cell = parseQuadbin(text) else {
                throw ModelRequest.invalidSpatial("spatialFilters indexes must be quadbin cell ids (16 hexadecimal or 19 decimal digits)")
            }
            return cell
        })
    }

    /// An H3 cell as deck.gl prints it (hex text) or as h3int (a decimal number or string).
    static func parseH3(_ item: JSON) -> UInt64? {
        let hex: String
        if let text = item.stringValue {
            if text.count >= 17, let value = UInt64(text) { hex = String(value, radix: 16) } else { hex = text.lowercased() }
        } else if let number = item.doubleValue, number >= 0, number < 9.3e18, number == number.rounded() {
            hex = String(UInt64(number), radix: 16)
        } else {
            return nil
        }
        return H3Cells.cell(hex: hex)?.cell
    }

    /// A quadbin cell as deck.gl prints it (16 hex digits) or as a warehouse prints a bigint (decimal).
    static func parseQuadbin(_ text: String) -> UInt64? {
        let value: UInt64?
        switch text.count {
        case 16: value = UInt64(text, radix: 16)
        case 18...20: value = UInt64(text)
        default: value = nil
        }
        guard let value else { return nil }
        let hex = String(value, radix: 16)
        return Quadbin.tile(hex: String(repeating: "0", count: max(0, 16 - hex.count)) + hex) == nil ? nil : value
    }
}

/// `spatialFiltersMode`: which cells of a spatial-index column a polygon selects.
enum SpatialFilterMode: String, Sendable {
    case center, intersects, contains

    /// The condition on the quadbin column `cell` for the WGS84 shape `shape`.
    func quadbinCondition(cell: SQL, shape: SQL) -> SQL {
        switch self {
        case .center: return "ST_Intersects(carto.quadbin_center(\(cell)), \(shape))"
        case .intersects: return "ST_Intersects(carto.quadbin_boundary(\(cell)), \(shape))"
        case .contains: return "ST_Contains(\(shape), carto.quadbin_boundary(\(cell)))"
        }
    }

    /// The condition on the H3 cell `cell` (bigint) for the WGS84 shape `shape`.
    func h3Condition(cell: SQL, shape: SQL) -> SQL {
        switch self {
        case .center: return "ST_Intersects(carto.h3_center(\(cell)), \(shape))"
        case .intersects: return "ST_Intersects(carto.h3_boundary(\(cell)), \(shape))"
        case .contains: return "ST_Contains(\(shape), carto.h3_boundary(\(cell)))"
        }
    }

    /// The condition on the H3 cell `cell` (bigint) for selected cells (bound as one bigint[]).
    static func h3Cells(cell: SQL, _ cells: [UInt64]) -> SQL {
        let list = "{" + cells.map { String(Int64(bitPattern: $0)) }.joined(separator: ",") + "}"
        return """
            EXISTS (SELECT 1 FROM unnest(\(list)::bigint[]) AS __sel(cell) WHERE CASE
              WHEN carto.h3_resolution(__sel.cell) <= carto.h3_resolution(\(cell))
              THEN carto.h3_toparent(\(cell), carto.h3_resolution(__sel.cell)) = __sel.cell ELSE false END)
            """
    }

    /// The condition on the quadbin column `cell` for selected cells (bound as one bigint[]).
    static func quadbinCells(cell: SQL, _ cells: [UInt64]) -> SQL {
        let list = "{" + cells.map { String(Int64(bitPattern: $0)) }.joined(separator: ",") + "}"
        return """
            EXISTS (SELECT 1 FROM unnest(\(list)::bigint[]) AS __sel(cell) WHERE CASE
              WHEN carto.quadbin_resolution(__sel.cell) <= carto.quadbin_resolution(\(cell))
              THEN carto.quadbin_toparent(\(cell), carto.quadbin_resolution(__sel.cell)) = __sel.cell ELSE false END)
            """
    }
}
