import Foundation
import HTTPKit
import Observability
import OutboundHTTP
import Spawn

/// `POST /api/v3/imports/preview`: the same inputs as an import (JSON `{url}` or an uploaded file),
/// answered synchronously with the guessed format, layers, columns and the first rows as GeoJSON
/// features — produced by `ogrinfo` and `ogr2ogr -limit` under the same hardening as imports, in a
/// throwaway folder. Nothing is written to the warehouse. URL previews are fetched by this program
/// with the same SSRF checks as the worker, so import-api needs outbound network for them.
extension ImportRoutes {
    static let previewSeconds = 60.0

    func preview(_ request: HTTPRequest) throws -> HTTPResponse {
        _ = try authenticate(request)
        let dir = settings.previewDir + "/" + UploadStore.newName()
        guard mkdir(dir, 0o700) == 0 else { throw APIError(507, "storage_unavailable", "Could not prepare a preview folder") }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let deadline = Date().addingTimeInterval(min(Self.previewSeconds, Double(settings.timeoutSeconds)))
        var fields = Fields(values: try request.queryParameters())
        let input: String
        var hints: [String] = []
        do {
            if request.mediaType == "application/json" {
                let p = try Parameters.from(request, bodyLimit: 1 << 20)
                for (k, _) in p.body { fields.values[k] = p.string(k) }
                guard let url = fields["url"] else { throw APIError.badRequest("Give a url (JSON) or upload a file", code: "missing_parameter") }
                let downloader = Downloader(guardian: URLGuard(allowlist: settings.privateURLAllowlist), maxBytes: settings.maxBytes,
                                            maxRedirects: settings.maxRedirects)
                let got = try downloader.download(url, into: dir, deadline: deadline, isCancelled: { request.isClientGone() }, progress: { _ in })
                input = got.path
                hints = got.nameHints
            } else {
                let writer = UploadFile(path: dir + "/upload.bin")
                try writer.open()
                var filename = fields["filename"] ?? request.header("content-disposition").flatMap { HeaderParameters.parse($0)["filename"] }
                if request.mediaType == "multipart/form-data" {
                    let store = UploadStore(directory: dir)
                    let part = try UploadStore.Writer(store: store)
                    defer { part.discard() }
                    filename = try receiveMultipart(request, into: part, fields: &fields) ?? filename
                    try part.finish()
                    guard rename(part.path, writer.path) == 0 else { throw APIError.internalError("Could not store the preview file") }
                } else {
                    try request.streamBody(limit: settings.maxBytes) { try writer.write($0) }
                    try writer.close()
                    try checkComplete(request, bytes: fileSize(writer.path), raw: true)
                }
                input = writer.path
                if let filename { hints = [filename] }
            }
            return .json(try previewBody(input: input, hints: hints, autoguessing: fields.bool("autoguessing", default: true),
                                         dir: dir, deadline: deadline, request: request),
                         headers: [("Cache-Control", "no-store")])
        } catch let f as ImportFailure {
            throw APIError(f.permanent ? 422 : 503, "preview_failed", f.message)
        } catch let f as URLRefused {
            throw APIError(f.permanent ? 422 : 503, "preview_failed", f.message)
        } catch is ImportCancelled {
            throw APIError.badRequest("The request was interrupted", code: "incomplete_upload")
        } catch let e as ChildProcess.Failure {
            Log.error("preview_failed", [("request_id", request.requestId), ("error", e.message)])
            throw APIError.unavailable("Preview is unavailable: \(e.message)")
        }
    }

    func previewBody(input: String, hints: [String], autoguessing: Bool, dir: String, deadline: Date, request: HTTPRequest) throws -> JSON {
        guard fileSize(input) > 0 else { throw ImportFailure("The file is empty") }
        let resolverSettings = previewSettings(dir)
        let dataset = try DatasetResolver(settings: resolverSettings).resolve(input: input, nameHints: hints, workDir: dir, deadline: deadline,
                                                                             isCancelled: { request.isClientGone() })
        if dataset.format == .csv || dataset.format == .tsv {
            try CSVCheck.validate(path: dataset.path, separator: dataset.format == .tsv ? 9 : nil,
                                  isCancelled: { request.isClientGone() })
        }
        let layers = try GDALTools.layers(of: dataset.path, format: dataset.format, autoguessing: autoguessing, workDir: dir,
                                          deadline: deadline, isCancelled: { request.isClientGone() })
        let (layer, _) = try ImportRunner.chooseLayer(layers)
        var argv = [try ChildProcess.tool("ogr2ogr"), "-f", "GeoJSON", "-limit", String(settings.previewRows), "-dim", "XY",
                    "-lco", "COORDINATE_PRECISION=7", "-lco", "WRITE_NAME=NO"]
        argv += GDALTools.openOptions(for: dataset.format, autoguessing: autoguessing)
        if layer.hasGeometry { argv += layer.hasSRS ? ["-t_srs", "EPSG:4326"] : ["-a_srs", "EPSG:4326"] }
        argv += ["/vsistdout/", dataset.path, layer.name]
        let out = dir + "/preview.json", err = dir + "/preview.err"
        let env = try GDALTools.environment(keeping: [dataset.format.driver, "GeoJSON"], workDir: dir)
        let child = try ChildProcess(argv, environment: env, stdout: out, stderr: err)
        let cap = 16 << 20
        switch child.wait(deadline: deadline, isCancelled: { request.isClientGone() },
                          check: { fileSize(out) > cap ? "The first rows are too large to preview" : nil }) {
        case .exited(0): break
        case .cancelled: throw ImportCancelled()
        case .timedOut: throw ImportFailure("The preview took too long")
        case .aborted(let why): throw ImportFailure(why)
        default: throw ImportFailure("GDAL could not read the file: \(GDALTools.gdalMessage(err))")
        }
        let collection = (try? JSON.decode([UInt8]((try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data()))) ?? .null
        let features = collection["features"]?.arrayValue ?? []
        return [
            "format": .string(dataset.format.rawValue),
            "layer": .string(layer.name),
            "layers": .array(layers.map { ["name": .string($0.name), "featureCount": .int($0.featureCount), "geometryType": .string($0.geometryType)] }),
            "geometryType": layer.hasGeometry ? .string(layer.geometryType) : .null,
            "totalRows": .int(layer.featureCount),
            "columns": .array(layer.fields.map { ["name": .string(ColumnNames.sanitize($0.name)), "sourceName": .string($0.name), "type": .string($0.type)] }),
            "rows": .array(features.map { $0["properties"] ?? .null }),
            "features": .array(features),
        ]
    }

    /// Previews extract archives into their own folder (the resolver links or renames inputs there).
    func previewSettings(_ dir: String) -> ImportSettings {
        var s = settings
        s.directory = dir
        return s
    }
}

/// A plain file written in chunks (the preview's raw upload).
final class UploadFile {
    let path: String
    private var fd: Int32 = -1
    init(path: String) { self.path = path }

    func open() throws {
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw APIError(507, "storage_unavailable", "Could not store the preview file") }
    }

    func write(_ chunk: [UInt8]) throws {
        var offset = 0
        while offset < chunk.count {
            let n = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, chunk.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw APIError(507, errno == ENOSPC ? "disk_full" : "storage_unavailable", "Could not store the preview file")
            }
            offset += n
        }
    }

    func close() throws {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }
}
