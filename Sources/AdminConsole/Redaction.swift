import Config
import Foundation

/// What the console and the support bundle show of secrets: never a password, in a value or a log line.
public enum Redaction {
    public static let mark = "<redacted>"

    /// A conninfo `password=…`, an URL's `user:password@` (to the last `@`, so a raw `@` in a password
    /// stays hidden) and a `key=` are replaced; the rest stays readable.
    public static func scrub(_ text: String) -> String {
        var out = text
        let patterns = [
            #"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'"&]+)"#,
            #"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*:)([^\s]+)(@)"#,
            #"(?i)((?:api_?key|secret|token)\s*[=:]\s*)([^\s&"']+)"#,
        ]
        for pattern in patterns {
            guard let regex = try? NSRegularExpression(pattern: pattern) else { continue }
            let template = regex.numberOfCaptureGroups == 3 ? "$1\(mark)$3" : "$1\(mark)"
            out = regex.stringByReplacingMatches(in: out, range: NSRange(out.startIndex..., in: out), withTemplate: template)
        }
        return out
    }

    /// A config value as shown: secret keys scrubbed.
    public static func value(_ key: String, _ value: String) -> String {
        ConfigKeys.named(key)?.secret == true ? scrub(value) : value
    }

    /// An env file with every secret key's value scrubbed and every line scrubbed of passwords.
    public static func envFile(_ text: String) -> String {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }).map { line -> String in
            let s = String(line)
            if let eq = s.firstIndex(of: "="), !s.hasPrefix("#") {
                let key = s[..<eq].trimmingCharacters(in: .whitespaces)
                return "\(key)=\(value(key, String(s[s.index(after: eq)...])))"
            }
            return scrub(s)
        }.joined(separator: "\n")
    }
}
