import Foundation
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

    /// The basemaps a map may choose (its keplerMapConfig.config.mapStyle.styleType): the offline reference
    /// basemap in light and dark, and the operator's TESSERA_BASEMAP_URL with what is wrong with it, if anything.
    func basemaps() -> JSON {
        var list: [JSON] = [["id": "tessera-light", "label": "Offline light", "type": "tessera"],
                            ["id": "tessera-dark", "label": "Offline dark", "type": "tessera"]]
        let url = services.config.basemapURL
        if !url.isEmpty {
            let host = URLComponents(string: url.replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: ""))?.host ?? url
            var o: [String: JSON] = ["id": "operator", "label": .string("\(host) (configured)"), "url": .string(url),
                                     "type": url.contains("{z}") ? "raster" : "style"]
            let missing = ["{z}", "{x}", "{y}"].filter { !url.contains($0) }
            if url.contains("{z}") && !missing.isEmpty {
                o["problem"] = .string("TESSERA_BASEMAP_URL is not an XYZ template: it lacks \(missing.joined(separator: ", ")).")
            }
            if !services.config.basemapAttribution.isEmpty { o["attribution"] = .string(services.config.basemapAttribution) }
            list.append(.object(o))
        }
        return .array(list)
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let signup: String
        switch services.config.signup {
        case .open: signup = "open"
        case .invite: signup = "invitation"
        case .closed: signup = "closed"
        }
        return .json(["basemap": basemap(), "basemaps": basemaps(), "signup": .string(signup), "smtp": .bool(!services.config.smtpURL.isEmpty)],
                     headers: [("Cache-Control", "public, max-age=60")])
    }
}
