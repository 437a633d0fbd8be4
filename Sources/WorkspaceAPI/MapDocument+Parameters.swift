import HTTPKit

/// The builder's SQL parameters (`keplerMapConfig.config.parameters`): controls bound to `{{name}}` in
/// query layers. Checked on save so that a bad document is refused with a clear 400 instead of
/// breaking the builder and the public viewer that read it.
extension MapDocument {
    static let parameterTypes: Set<String> = ["text", "numeric", "date", "category"]
    static let maxParameters = 50

    static func validateParameters(_ value: JSON) throws {
        guard let items = value.arrayValue else { throw invalid("keplerMapConfig.config.parameters must be an array") }
        guard items.count <= maxParameters else { throw invalid("A map has at most \(maxParameters) SQL parameters") }
        var seen: Set<String> = []
        for (i, item) in items.enumerated() {
            let at = "keplerMapConfig.config.parameters[\(i)]"
            guard item.objectValue != nil, let name = item["name"]?.stringValue, isParameterName(name) else {
                throw invalid("\(at).name must start with a letter or _ and hold only letters, digits and _ (at most 63)")
            }
            guard seen.insert(name).inserted else { throw invalid("\(at).name \(name) is used twice") }
            guard let type = item["type"]?.stringValue, parameterTypes.contains(type) else {
                throw invalid("\(at).type must be text, numeric, date or category")
            }
            let v = item["value"] ?? .null
            switch type {
            case "numeric":
                guard let pair = v.arrayValue, pair.count == 2, pair.allSatisfy({ $0.doubleValue != nil }) else {
                    throw invalid("\(at).value must be [from, to] numbers")
                }
            case "date":
                guard let pair = v.arrayValue, pair.count == 2, pair.allSatisfy({ $0.stringValue.map(isISODate) ?? false }) else {
                    throw invalid("\(at).value must be [from, to] dates as YYYY-MM-DD")
                }
            case "category":
                guard let list = v.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                    throw invalid("\(at).value must be a list of strings")
                }
            default:
                guard v.stringValue != nil else { throw invalid("\(at).value must be a string") }
            }
        }
    }

    static func isParameterName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.unicodeScalars.count <= 63 else { return false }
        let letter: (Unicode.Scalar) -> Bool = { ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || $0 == "_" }
        return letter(first) && s.unicodeScalars.allSatisfy { letter($0) || ($0 >= "0" && $0 <= "9") }
    }

    static func isISODate(_ s: String) -> Bool {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 3 && parts[0].count == 4 && parts[1].count == 2 && parts[2].count == 2
            && parts.allSatisfy { $0.allSatisfy(\.isASCII) && Int($0) != nil }
    }
}
