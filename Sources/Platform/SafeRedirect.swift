/// Where a page may send the browser after sign-in (`next=`): only a path on this site. Browsers drop
/// tabs and newlines from URLs and read `\` as `/`, so `/%09/evil`, `/\evil` and `//evil` all leave the
/// site; anything but a plain absolute path falls back to `/`.
public enum SafeRedirect {
    public static func path(_ next: String?, fallback: String = "/") -> String {
        guard let next, isSafe(next) else { return fallback }
        return next
    }

    public static func isSafe(_ next: String) -> Bool {
        let scalars = Array(next.unicodeScalars)
        guard scalars.first == "/", next.count <= 2048 else { return false }
        if scalars.count > 1, scalars[1] == "/" || scalars[1] == "\\" { return false }
        for s in scalars {
            // Controls, whitespace and backslashes are either stripped or reinterpreted by browsers.
            if s.value < 0x21 || s.value == 0x7F || s == "\\" || s.properties.isWhitespace { return false }
            if (0x80...0x9F).contains(s.value) || s.properties.generalCategory == .format { return false }
        }
        // Percent-encoded controls, slashes or backslashes may be decoded once more on the way.
        let lower = next.lowercased()
        for encoded in ["%0", "%1", "%7f", "%5c", "%2f", "%20"] where lower.contains(encoded) { return false }
        // The accounts app itself is no destination (it would loop back to sign-in).
        return !(next == "/acc" || next.hasPrefix("/acc/") || next.hasPrefix("/acc#") || next.hasPrefix("/acc?"))
    }
}
