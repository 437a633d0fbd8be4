import HTTPKit

/// Every refusal of a workflow document is one 400 that names the node and the parameter at fault, so the
/// canvas can put the message beside the field (`details` carries `node`/`parameter`).
public enum WorkflowError {
    public static func invalid(_ message: String, node: String? = nil, parameter: String? = nil) -> APIError {
        var prefix = ""
        if let node { prefix += "node \(node)" }
        if let parameter { prefix += (prefix.isEmpty ? "" : ", ") + "parameter \(parameter)" }
        var e = APIError.badRequest(prefix.isEmpty ? message : "\(prefix): \(message)", code: "invalid_workflow")
        if let node { e.extra["node"] = .string(node) }
        if let parameter { e.extra["parameter"] = .string(parameter) }
        return e
    }
}
