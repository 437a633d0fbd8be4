import HTTPKit
import Platform
@testable import SQLAPI
import XCTest

final class GrantCheckTests: XCTestCase {
    private func collect(_ text: String) throws -> (relations: [String], refused: Bool) {
        let plan = QueryPlan(root: try JSON.decode(text))
        return (plan.relations.map { "\($0.schema).\($0.table)" }.sorted(), !plan.nodeTypes.isDisjoint(with: GrantCheck.refusedNodes))
    }

    let hashJoin = """
        [
          {
            "Plan": {
              "Node Type": "Hash Join",
              "Parallel Aware": false,
              "Join Type": "Inner",
              "Output": ["a.id", "b.name"],
              "Hash Cond": "(a.b_id = b.id)",
              "Plans": [
                {
                  "Node Type": "Seq Scan",
                  "Parent Relationship": "Outer",
                  "Relation Name": "a",
                  "Schema": "public",
                  "Alias": "a",
                  "Output": ["a.id", "a.b_id"]
                },
                {
                  "Node Type": "Hash",
                  "Parent Relationship": "Inner",
                  "Plans": [
                    {
                      "Node Type": "Index Scan",
                      "Parent Relationship": "Outer",
                      "Scan Direction": "Forward",
                      "Index Name": "b_pkey",
                      "Relation Name": "b",
                      "Schema": "sales",
                      "Alias": "b"
                    }
                  ]
                }
              ]
            }
          }
        ]
        """

    func testCollectsRelationsFromNestedPlans() throws {
        let result = try collect(hashJoin)
        XCTAssertEqual(result.relations, ["public.a", "sales.b"])
        XCTAssertFalse(result.refused)
    }

    func testFunctionScanIsRefused() throws {
        let plan = """
            [{"Plan": {"Node Type": "Nested Loop", "Plans": [
              {"Node Type": "Seq Scan", "Relation Name": "cities", "Schema": "public"},
              {"Node Type": "Function Scan", "Function Name": "generate_series", "Schema": "pg_catalog", "Alias": "g"}
            ]}}]
            """
        let result = try collect(plan)
        XCTAssertTrue(result.refused)
        XCTAssertEqual(result.relations, ["public.cities"])
    }

    func testOtherRefusedNodeTypes() throws {
        for type in ["Table Function Scan", "Foreign Scan", "Custom Scan"] {
            XCTAssertTrue(try collect(#"[{"Plan": {"Node Type": "\#(type)"}}]"#).refused, type)
        }
        XCTAssertFalse(try collect(#"[{"Plan": {"Node Type": "Result"}}]"#).refused)
    }

    func testSubPlansInitPlansAndCTEsAreWalked() throws {
        let plan = """
            [{"Plan": {"Node Type": "Aggregate", "Plans": [
              {"Node Type": "CTE Scan", "CTE Name": "x", "Parent Relationship": "Outer"},
              {"Node Type": "Seq Scan", "Parent Relationship": "InitPlan", "Subplan Name": "CTE x",
               "Relation Name": "secret", "Schema": "hidden"},
              {"Node Type": "Bitmap Heap Scan", "Parent Relationship": "SubPlan", "Relation Name": "Mixed Case",
               "Schema": "Odd Schema", "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "i"}]}
            ]}, "Planning Time": 0.1}]
            """
        let result = try collect(plan)
        XCTAssertEqual(result.relations, ["Odd Schema.Mixed Case", "hidden.secret"])
        XCTAssertFalse(result.refused)
    }

    func testMissingSchemaDefaultsToPublic() throws {
        XCTAssertEqual(try collect(#"[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t"}}]"#).relations, ["public.t"])
    }

    func testNoRelations() throws {
        let result = try collect(#"[{"Plan": {"Node Type": "Result", "Output": ["1"]}}]"#)
        XCTAssertEqual(result.relations, [])
        XCTAssertFalse(result.refused)
    }

    func testDeniedError() {
        let error = GrantCheck.denied()
        XCTAssertEqual(error.status, 403)
        XCTAssertEqual(error.code, "source_not_granted")
    }
}
