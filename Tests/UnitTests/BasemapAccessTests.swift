import HTTPKit
@testable import MapsAPI
import Platform
import XCTest

/// Who may draw the offline basemap (schema basemap): the organisation's users, every map's own token
/// (WorkspaceAPI's MapDocument grants carry `basemap.*`), and no token granted only other sources.
final class BasemapAccessTests: XCTestCase {
    private func token(_ grants: [Grant]) -> Principal {
        Principal(accountId: "acc", userId: nil, kind: .apiToken(id: "t", grants: grants))
    }

    func testUsersAndBasemapGrantsMayDrawIt() throws {
        let user = Principal(accountId: "acc", userId: "u", kind: .user(role: .viewer, viaSession: true))
        XCTAssertNoThrow(try BasemapRoute.authorize(user, connection: "carto_dw"))
        let mapToken = token([Grant(connectionName: "carto_dw", source: "public.world_countries"), Grant(connectionName: "carto_dw", source: "basemap.*")])
        XCTAssertNoThrow(try BasemapRoute.authorize(mapToken, connection: "carto_dw"))
        XCTAssertNoThrow(try BasemapRoute.authorize(token([Grant(connectionName: "carto_dw", source: "*")]), connection: "carto_dw"))
    }

    func testOtherGrantsMayNot() {
        for grants in [[Grant(connectionName: "carto_dw", source: "public.world_countries")],
                       [Grant(connectionName: "carto_dw", source: "SELECT * FROM basemap.places")],
                       [Grant(connectionName: "other", source: "basemap.*")]] {
            XCTAssertThrowsError(try BasemapRoute.authorize(token(grants), connection: "carto_dw")) { error in
                XCTAssertEqual((error as? APIError)?.status, 403)
            }
        }
        XCTAssertThrowsError(try BasemapRoute.authorize(token([]), connection: "carto_dw"))
    }
}
