import Foundation
import HTTPKit
import Platform

/// `POST /api/v3/lds/geocoding/table` queues a geocode-table job (run by the sql-worker); `GET …/table/{id}` reports it.
struct GeocodeTableRoutes: Sendable {
    let lds: LDSContext

    func register(_ router: Router) {
    }
}
