import HTTPKit

/// One kind of node: what the palette shows, which input ports it has and which parameters it takes.
/// `GET /api/v3/workflows/components` serves this table as it is, so the canvas and the API validate
/// against the same schema.
public struct Component: Sendable {
    public enum Category: String, Sendable { case input, preparation, spatial, indexes, location, statistics, output }

    /// A parameter's kind decides how it is validated and rendered on the canvas.
    public enum Kind: String, Sendable {
        case string, number, integer, boolean, column, columns, expression, choice, table, sql, url, aggregates, sort, mapping, filter
    }

    public struct Param: Sendable {
        public let name: String
        public let kind: Kind
        public let required: Bool
        public let defaultValue: JSON?
        public let options: [String]
        public let title: String

        public init(_ name: String, _ kind: Kind, required: Bool = false, default defaultValue: JSON? = nil,
                    options: [String] = [], title: String) {
            self.name = name
            self.kind = kind
            self.required = required
            self.defaultValue = defaultValue
            self.options = options
            self.title = title
        }

        var json: JSON {
            var o: [String: JSON] = ["name": .string(name), "type": .string(kind.rawValue), "required": .bool(required),
                                     "title": .string(title)]
            if let defaultValue { o["default"] = defaultValue }
            if !options.isEmpty { o["options"] = .array(options.map { .string($0) }) }
            return .object(o)
        }
    }

    public let type: String
    public let category: Category
    public let title: String
    public let inputs: [String]
    public let outputs: [String]
    public let params: [Param]

    init(_ type: String, _ category: Category, _ title: String, inputs: [String] = ["in"], outputs: [String] = ["out"],
         _ params: [Param] = []) {
        self.type = type
        self.category = category
        self.title = title
        self.inputs = inputs
        self.outputs = outputs
        self.params = params
    }

    public var json: JSON {
        ["type": .string(type), "category": .string(category.rawValue), "title": .string(title),
         "inputs": .array(inputs.map { .string($0) }), "outputs": .array(outputs.map { .string($0) }),
         "params": .array(params.map(\.json))]
    }

    public func param(_ name: String) -> Param? { params.first { $0.name == name } }
}
