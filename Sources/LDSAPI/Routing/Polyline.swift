/// Google's encoded polyline format, which Valhalla uses for route shapes with 6 decimal places.
enum Polyline {
    /// [lon, lat] pairs (GeoJSON order), or nil when the text is not a valid encoding.
    static func decode(_ text: String, precision: Int = 6) -> [[Double]]? {
        let bytes = Array(text.utf8)
        var index = 0
        var lat = 0, lon = 0
        var points: [[Double]] = []
        func next() -> Int? {
            var result = 0, shift = 0
            while index < bytes.count {
                let b = Int(bytes[index]) - 63
                index += 1
                guard b >= 0, b < 64, shift < 60 else { return nil }
                result |= (b & 0x1F) << shift
                shift += 5
                if b < 0x20 { return (result & 1) != 0 ? ~(result >> 1) : result >> 1 }
            }
            return nil
        }
        var factor = 1.0
        for _ in 0..<precision { factor *= 10 }
        while index < bytes.count {
            guard let dLat = next(), let dLon = next() else { return nil }
            lat += dLat
            lon += dLon
            points.append([Double(lon) / factor, Double(lat) / factor])
        }
        return points
    }
}
