import Foundation
import HTTPKit
import Observability

/// The shared `main` of every FastCGI API program: `--socket PATH` (or a socket from systemd) and
/// `--config FILE`, then serve until SIGTERM.
public enum FastCGIProgram {
    public struct Arguments: Sendable {
        public var socketPath: String?
        public var configFile: String?
        /// Values of the program's own `--flag VALUE` options (those named in `options`).
        public var options: [String: String] = [:]
    }

    public static func run(name: String, options: Set<String> = [],
                           _ build: (Arguments) throws -> (HTTPApplication, threads: Int)) -> Never {
        var args = Arguments()
        var it = CommandLine.arguments.dropFirst().makeIterator()
        while let arg = it.next() {
            switch arg {
            case "--socket": args.socketPath = it.next()
            case "--config": args.configFile = it.next()
            case let flag where options.contains(flag): args.options[flag] = it.next()
            case "--help", "-h":
                print("usage: \(name) [--socket PATH] [--config /etc/tessera/tessera.env]")
                exit(0)
            default:
                FileHandle.standardError.write(Data("\(name): unknown argument \(arg)\n".utf8))
                exit(2)
            }
        }
        do {
            let (app, threads) = try build(args)
            try FastCGIServer(app: app, options: .init(socketPath: args.socketPath, threads: threads)).run()
            exit(0)
        } catch {
            Log.error("startup_failed", [("program", name), ("error", String(describing: error))])
            exit(1)
        }
    }
}
