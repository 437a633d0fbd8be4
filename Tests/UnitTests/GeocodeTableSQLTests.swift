@testable import LDSAPI
import HTTPKit
import SQLKit
import XCTest

final class GeocodeTableSQLTests: XCTestCase {
    func spec(_ table: String, country: String? = "ES", countryColumn: String? = nil) throws -> GeocodeTableSpec {
        var body: [String: JSON] = ["connection": "carto_dw", "table": .string(table), "addressColumns": ["street", "City Name"]]
        if let country { body["country"] = .string(country) }
        if let countryColumn { body["countryColumn"] = .string(countryColumn) }
        return try GeocodeTableSpec(Parameters(body: body))
    }

    func testStatements() throws {
        let sql = try GeocodeTableSQL(try spec(#"Sales."My ""Addresses""#))
        XCTAssertEqual(sql.table, QualifiedName(schema: "sales", table: #"My "Addresses"#))
        assertSnapshot(SQL.join(sql.prepare, separator: ";\n"), "geocode_table_prepare")
        assertSnapshot(sql.remaining, "geocode_table_remaining")
        assertSnapshot(sql.claim, "geocode_table_claim_country")
        assertSnapshot(sql.update, "geocode_table_update")
        assertSnapshot(sql.totals, "geocode_table_totals")
        XCTAssertEqual(sql.claim.parameters(filling: ["limit": "200"]), ["ES", "200"])
        let byColumn = try GeocodeTableSQL(try spec("addresses", country: nil, countryColumn: "cc"))
        assertSnapshot(byColumn.claim, "geocode_table_claim_column")
    }

    func testBadTableNamesAre400s() {
        for bad in ["", "a..b", "a.b.c.d", #""x"#] {
            assertAPIError(try spec(bad), status: 400)
        }
    }
}
