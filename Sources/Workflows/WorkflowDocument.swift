import HTTPKit

/// The graph a workflow is: nodes with their parameters, edges into named input ports, and variables.
/// Parsing checks what needs no database: known component types, unique ids, edges between existing nodes
/// and ports, every input connected once, no cycle, required parameters present.
public struct WorkflowDocument: Sendable {
    public struct Node: Sendable {
        public let id: String
        public let type: String
        public let params: [String: JSON]
        public let position: JSON
        public var component: Component { ComponentCatalog.byType[type]! }
    }

    public struct Edge: Sendable, Equatable {
        public let source: String
        public let target: String
        public let targetPort: String
    }

    public struct Variable: Sendable {
        public let name: String
        public let type: String
        public let defaultValue: JSON
    }

    public let nodes: [Node]
    public let edges: [Edge]
    public let variables: [Variable]

    public init(nodes: JSON?, edges: JSON?, variables: JSON?) throws {
        guard let nodeList = (nodes ?? .array([])).arrayValue else { throw WorkflowError.invalid("nodes must be an array") }
        guard nodeList.count <= 200 else { throw WorkflowError.invalid("a workflow has at most 200 nodes") }
        var parsed: [Node] = []
        for n in nodeList {
            guard let id = n["id"]?.stringValue, id.range(of: "^[A-Za-z0-9_-]{1,40}$", options: .regularExpression) != nil else {
                throw WorkflowError.invalid("every node needs an id of 1-40 letters, digits, - or _")
            }
            guard !parsed.contains(where: { $0.id == id }) else { throw WorkflowError.invalid("duplicate node id", node: id) }
            guard let type = n["type"]?.stringValue, ComponentCatalog.byType[type] != nil else {
                throw WorkflowError.invalid("unknown component type \(n["type"]?.text ?? "null")", node: id, parameter: "type")
            }
            let params = n["params"]?.objectValue ?? [:]
            if let p = n["params"], !p.isNull, p.objectValue == nil { throw WorkflowError.invalid("params must be an object", node: id) }
            let component = ComponentCatalog.byType[type]!
            if let unknown = params.keys.sorted().first(where: { component.param($0) == nil }) {
                throw WorkflowError.invalid("\(type) has no parameter \(unknown)", node: id, parameter: unknown)
            }
            parsed.append(Node(id: id, type: type, params: params, position: n["position"] ?? .null))
        }
        self.nodes = parsed
        guard let edgeList = (edges ?? .array([])).arrayValue else { throw WorkflowError.invalid("edges must be an array") }
        var parsedEdges: [Edge] = []
        for e in edgeList {
            guard let source = e["source"]?.stringValue, let target = e["target"]?.stringValue else {
                throw WorkflowError.invalid("every edge needs source and target")
            }
            guard let from = parsed.first(where: { $0.id == source }) else {
                throw WorkflowError.invalid("edge from unknown node \(source)", node: target)
            }
            guard let to = parsed.first(where: { $0.id == target }) else {
                throw WorkflowError.invalid("edge to unknown node \(target)", node: source)
            }
            guard !from.component.outputs.isEmpty else { throw WorkflowError.invalid("\(from.type) has no output", node: source) }
            let port = e["targetPort"]?.stringValue ?? to.component.inputs.first ?? ""
            guard to.component.inputs.contains(port) else {
                throw WorkflowError.invalid("\(to.type) has no input \(port)", node: target, parameter: "targetPort")
            }
            guard !parsedEdges.contains(where: { $0.target == target && $0.targetPort == port }) else {
                throw WorkflowError.invalid("input \(port) is connected twice", node: target, parameter: port)
            }
            parsedEdges.append(Edge(source: source, target: target, targetPort: port))
        }
        self.edges = parsedEdges
        guard let variableList = (variables ?? .array([])).arrayValue else { throw WorkflowError.invalid("variables must be an array") }
        self.variables = try variableList.map { v in
            guard let name = v["name"]?.stringValue, name.range(of: "^[A-Za-z_][A-Za-z0-9_]{0,40}$", options: .regularExpression) != nil else {
                throw WorkflowError.invalid("every variable needs a name (letters, digits, _)")
            }
            let type = v["type"]?.stringValue ?? "string"
            guard ["string", "number", "boolean"].contains(type) else {
                throw WorkflowError.invalid("variable \(name): type must be string, number or boolean")
            }
            return Variable(name: name, type: type, defaultValue: v["default"] ?? .null)
        }
        for node in parsed {
            for port in node.component.inputs where !parsedEdges.contains(where: { $0.target == node.id && $0.targetPort == port }) {
                throw WorkflowError.invalid("input \(port) is not connected", node: node.id, parameter: port)
            }
            for p in node.component.params where p.required && (node.params[p.name] == nil || node.params[p.name] == .null) {
                throw WorkflowError.invalid("\(p.name) is required", node: node.id, parameter: p.name)
            }
        }
        _ = try order()
    }

    /// The document as stored and returned.
    public var json: JSON {
        ["nodes": .array(nodes.map { ["id": .string($0.id), "type": .string($0.type), "params": .object($0.params), "position": $0.position] }),
         "edges": .array(edges.map { ["source": .string($0.source), "target": .string($0.target), "targetPort": .string($0.targetPort)] }),
         "variables": .array(variables.map { ["name": .string($0.name), "type": .string($0.type), "default": $0.defaultValue] })]
    }

    /// The node ids feeding each input port of `node`.
    public func inputs(of node: String) -> [String: String] {
        Dictionary(uniqueKeysWithValues: edges.filter { $0.target == node }.map { ($0.targetPort, $0.source) })
    }

    /// Nodes in an order where each comes after its inputs (Kahn's algorithm, ties in document order so the
    /// order is stable); a cycle is a 400 naming a node on it.
    public func order() throws -> [Node] {
        var remaining = Dictionary(uniqueKeysWithValues: nodes.map { n in (n.id, edges.filter { $0.target == n.id }.count) })
        var out: [Node] = []
        var progressed = true
        while out.count < nodes.count, progressed {
            progressed = false
            for n in nodes where remaining[n.id] == 0 {
                remaining[n.id] = -1
                out.append(n)
                for e in edges where e.source == n.id { remaining[e.target]! -= 1 }
                progressed = true
            }
        }
        if let stuck = nodes.first(where: { remaining[$0.id]! > 0 }) {
            throw WorkflowError.invalid("the graph has a cycle through this node", node: stuck.id)
        }
        return out
    }

    /// Variable values for a run: the defaults overridden by `given` (unknown names are refused).
    public func resolveVariables(_ given: JSON?) throws -> [String: JSON] {
        var values = Dictionary(uniqueKeysWithValues: variables.map { ($0.name, $0.defaultValue) })
        guard let given, !given.isNull else { return values }
        guard let object = given.objectValue else { throw WorkflowError.invalid("variables must be an object of name: value") }
        for (name, value) in object {
            guard let v = variables.first(where: { $0.name == name }) else {
                throw WorkflowError.invalid("unknown variable \(name)", parameter: "variables")
            }
            let ok: Bool
            switch (v.type, value) {
            case ("string", .string), ("number", .number), ("boolean", .bool), (_, .null): ok = true
            default: ok = false
            }
            guard ok else { throw WorkflowError.invalid("variable \(name) must be a \(v.type)", parameter: "variables") }
            values[name] = value
        }
        return values
    }
}
