import Foundation
import HTTPKit
import Platform

/// CARTO `filters` on raster bands (rasterSource's FilterOptions): `in`, `between` and `closed_open` on band
/// values. A pixel that fails is masked: every band of it becomes that band's nodata, as the client's own
/// raster filtering drops it. Pure.
struct RasterFilter {
    struct Clause {
        var band: Int
        var op: String
        var values: [Double]
        var ranges: [(Double?, Double?)]
    }
    let clauses: [[Clause]] // per filtered band, its operations (ANDed)
    let or: Bool

    /// Parses already structurally validated `filters` against the band names; anything else is a 400
    /// naming `filters`.
    init(_ filters: JSON?, or: Bool, bands: [String]) throws {
        self.or = or
        var clauses: [[Clause]] = []
        for (column, spec) in (filters?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let band = bands.firstIndex(of: column) else {
                throw APIError.badRequest("filters: the raster has no band \(column) (bands: \(bands.joined(separator: ", ")))",
                                          code: "invalid_filter")
            }
            var ops: [Clause] = []
            for (op, body) in (spec.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) where op != "owner" {
                let values = body["values"]?.arrayValue ?? []
                switch op {
                case "in":
                    let numbers = values.compactMap(\.doubleValue)
                    guard numbers.count == values.count else {
                        throw APIError.badRequest("filters: in on band \(column) takes numbers", code: "invalid_filter")
                    }
                    ops.append(Clause(band: band, op: op, values: numbers, ranges: []))
                case "between", "closed_open":
                    let ranges = try values.map { pair -> (Double?, Double?) in
                        let b = pair.arrayValue ?? []
                        guard b.count == 2, b.allSatisfy({ $0.isNull || $0.doubleValue != nil }) else {
                            throw APIError.badRequest("filters: \(op) on band \(column) takes [min, max] number pairs", code: "invalid_filter")
                        }
                        return (b[0].doubleValue, b[1].doubleValue)
                    }
                    ops.append(Clause(band: band, op: op, values: [], ranges: ranges))
                default:
                    throw APIError.badRequest("filters: \(op) is not supported on raster bands (in, between, closed_open are)",
                                              code: "invalid_filter")
                }
            }
            if !ops.isEmpty { clauses.append(ops) }
        }
        self.clauses = clauses
    }

    var isEmpty: Bool { clauses.isEmpty }

    func keeps(_ pixel: (Int) -> Double) -> Bool {
        func passes(_ c: Clause) -> Bool {
            let v = pixel(c.band)
            if v.isNaN { return false }
            if c.op == "in" { return c.values.contains(v) }
            return c.ranges.contains { lo, hi in
                (lo.map { v >= $0 } ?? true) && (hi.map { c.op == "closed_open" ? v < $0 : v <= $0 } ?? true)
            }
        }
        let results = clauses.map { $0.allSatisfy(passes) }
        return or ? results.contains(true) : results.allSatisfy { $0 }
    }

    /// Masks the failing pixels of `bands` (values per band, same length) with each band's nodata.
    func apply(_ bands: inout [[Double]], nodata: [Double]) {
        guard !isEmpty, let count = bands.first?.count else { return }
        for i in 0..<count where !keeps({ bands[$0][i] }) {
            for b in bands.indices { bands[b][i] = nodata[b] }
        }
    }
}
