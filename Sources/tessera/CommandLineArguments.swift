import Foundation

struct CLIError: Error {
    let message: String
    var code: Int32 = 1
}

/// `command [subcommand] --flag value …` with a check that nothing unknown was passed.
struct CommandLineArguments {
    var positional: [String] = []
    var options: [String: String] = [:]
    var flags: Set<String> = []
    static let booleanFlags: Set<String> = ["--if-missing", "--help", "--boundary"]

    init(_ args: ArraySlice<String>) {
        var it = args.makeIterator()
        while let arg = it.next() {
            if Self.booleanFlags.contains(arg) { flags.insert(arg) } else if arg.hasPrefix("--") { options[arg] = it.next() ?? "" } else { positional.append(arg) }
        }
    }

    mutating func take(_ name: String) -> String? { options.removeValue(forKey: name) }

    mutating func require(_ name: String) throws -> String {
        guard let v = take(name), !v.isEmpty else { throw CLIError(message: "missing \(name)", code: 2) }
        return v
    }

    func finish() throws {
        if let unknown = options.keys.sorted().first { throw CLIError(message: "unknown option \(unknown)", code: 2) }
    }
}
