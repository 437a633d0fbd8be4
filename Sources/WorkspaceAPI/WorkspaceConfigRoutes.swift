import HTTPKit
import Platform

/// `GET /api/v3/workspace/config`: what the web apps need before anyone signs in (accounts-www reads the
/// signup mode), so it is anonymous and holds nothing secret.
struct WorkspaceConfigRoutes {
    let services: Services

    func register(_ r: Router) {
        r.get("/api/v3/workspace/config", show)
    }

    /// The default basemap is Tessera's own `world_countries` layer in the embedded warehouse (works offline);
    /// TESSERA_BASEMAP_URL switches to a raster template (`{z}`) or a style URL.
    func basemap() -> JSON {
        let url = services.config.basemapURL
        var o: [String: JSON] = ["type": "tessera", "connection": "carto_dw", "table": "world_countries"]
        if !url.isEmpty {
            o["type"] = url.contains("{z}") ? "raster" : "style"
            o["url"] = .string(url)
        }
        return .object(o)
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let signup: String
        switch services.config.signup {
        case .open: signup = "open"
        case .invite: signup = "invitation"
        case .closed: signup = "closed"
        }
        return .json(["basemap": basemap(), "signup": .string(signup), "smtp": .bool(!services.config.smtpURL.isEmpty)],
                     headers: [("Cache-Control", "public, max-age=60")])
    }
}
