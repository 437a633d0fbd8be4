import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPKit

/// The one HTTP client of the external providers: a GET with a deadline, answering parsed JSON or the
/// contract's errors (no answer in time → 504, anything else wrong → 502 naming the provider).
struct ProviderHTTPClient: Sendable {
    let provider: String
    let timeout: TimeInterval

    /// A session without caches or cookies; requests are independent.
    private static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.requestCachePolicy = .reloadIgnoringLocalCacheData
        c.httpMaximumConnectionsPerHost = 8
        return URLSession(configuration: c)
    }()

    func getJSON(_ url: URL) throws -> JSON {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        // Nominatim's usage policy asks every client to identify itself.
        request.setValue("Tessera-LDS/1.0", forHTTPHeaderField: "User-Agent")
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: (Data?, URLResponse?, Error?)
        let task = Self.session.dataTask(with: request) { data, response, error in
            outcome = (data, response, error)
            done.signal()
        }
        task.resume()
        // The session's own timeout is per idle interval; this bounds the whole exchange.
        if done.wait(timeout: .now() + timeout + 0.5) == .timedOut {
            task.cancel()
            throw LDSErrors.providerTimeout(provider, seconds: timeout)
        }
        let (data, response, error) = outcome
        if let error {
            if (error as? URLError)?.code == .timedOut { throw LDSErrors.providerTimeout(provider, seconds: timeout) }
            throw LDSErrors.providerFailed(provider, "could not reach \(url.host ?? "the server") (\((error as? URLError)?.code.rawValue ?? 0))")
        }
        guard let http = response as? HTTPURLResponse else { throw LDSErrors.providerFailed(provider, "no HTTP response") }
        guard (200..<300).contains(http.statusCode) else {
            throw LDSErrors.providerFailed(provider, "HTTP \(http.statusCode)")
        }
        do { return try JSON.decode(Array(data ?? Data())) } catch {
            throw LDSErrors.providerFailed(provider, "the answer is not JSON")
        }
    }

    /// `base` + `path` with query items; a base path (`https://host/nominatim`) is kept.
    static func url(_ base: String, path: String, _ items: [(String, String?)]) throws -> URL {
        var trimmed = base
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard var c = URLComponents(string: trimmed + path) else { throw APIError.badRequest("Invalid provider URL", code: "invalid_provider") }
        c.queryItems = items.compactMap { k, v in v.map { URLQueryItem(name: k, value: $0) } }
        guard let url = c.url else { throw APIError.badRequest("Invalid provider URL", code: "invalid_provider") }
        return url
    }
}
