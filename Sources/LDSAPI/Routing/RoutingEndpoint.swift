import Foundation
import HTTPKit

/// Where an external routing provider (OSRM, Valhalla) answers: its base URL, the optional key (sent as the
/// query parameter the provider expects) and the shared HTTP client with its deadline.
struct RoutingEndpoint: Sendable {
    let baseURL: String
    let apiKey: String?
    let keyParameter: String
    let client: ProviderHTTPClient

    init(provider: String, baseURL: String, apiKey: String?, keyParameter: String, timeout: TimeInterval) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.keyParameter = keyParameter
        client = ProviderHTTPClient(provider: provider, timeout: timeout)
    }

    func get(_ path: String, _ items: [(String, String?)]) throws -> JSON {
        try client.getJSON(try ProviderHTTPClient.url(baseURL, path: path, items + [(keyParameter, apiKey)]))
    }
}
