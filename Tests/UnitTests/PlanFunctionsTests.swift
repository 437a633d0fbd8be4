import XCTest
import SQLKit

final class PlanFunctionsTests: XCTestCase {
    func testFindsPlainQuotedAndQualifiedCalls() {
        XCTAssertEqual(PlanFunctions.functionNames(in: "lower(t.name)"), ["lower"])
        XCTAssertEqual(PlanFunctions.functionNames(in: "\"substring\"(t.name, 1, 3)"), ["substring"])
        XCTAssertEqual(PlanFunctions.functionNames(in: "pg_catalog.query_to_xml('x'::text, true, false, ''::text)"),
                       ["pg_catalog.query_to_xml"])
    }

    func testSkipsLiteralsCastsAndKeywords() {
        XCTAssertEqual(PlanFunctions.functionNames(in: "('evil(x)'::text = t.name)"), [])
        XCTAssertEqual(PlanFunctions.functionNames(in: "(t.price)::numeric(10,2)"), [])
        XCTAssertEqual(PlanFunctions.functionNames(in: "(t.id = ANY ('{1,2}'::integer[])) AND (NOT (t.x IS NULL))"), [])
        XCTAssertEqual(PlanFunctions.functionNames(in: "CASE WHEN (t.a > 1) THEN 'it''s(odd)'::text ELSE NULL::text END"), [])
    }

    func testAllowListFailsClosed() {
        XCTAssertTrue(PlanFunctions.isAllowed("count"))
        XCTAssertTrue(PlanFunctions.isAllowed("ST_AsMVTGeom"))
        XCTAssertFalse(PlanFunctions.isAllowed("query_to_xml"))
        XCTAssertFalse(PlanFunctions.isAllowed("pg_catalog.query_to_xml"))
        XCTAssertFalse(PlanFunctions.isAllowed("table_to_xml"))
        XCTAssertFalse(PlanFunctions.isAllowed("pg_read_file"))
        XCTAssertFalse(PlanFunctions.isAllowed("st_estimatedextent"))
        XCTAssertFalse(PlanFunctions.isAllowed("my_plpgsql_reader"))
    }

    /// Issue 11, case 12: scoped tokens may not probe whether tables or roles exist.
    func testCatalogProbesAreRecognised() {
        XCTAssertFalse(PlanFunctions.isAllowed("postgis_constraint_srid"))
        XCTAssertFalse(PlanFunctions.isAllowed("postgis_full_version"))
        for probe in ["SELECT 'secret'::regclass", "SELECT CAST('x' AS pg_catalog.RegRole)", "SELECT 'x'::\"regnamespace\"",
                      "SELECT 1 FROM cities WHERE 'f(int)'::regprocedure IS NOT NULL", "SELECT 'x'::U&\"\\0072egclass\"",
                      "select 'public.t'::regclass::oid"] {
            XCTAssertTrue(PlanFunctions.namesCatalogObject(probe), probe)
        }
        for ok in ["SELECT name FROM public.cities", "SELECT region, count(*) FROM cities GROUP BY region", "SELECT registered FROM t"] {
            XCTAssertFalse(PlanFunctions.namesCatalogObject(ok), ok)
        }
    }
}
