import Foundation

/// Where a GeoJSON FeatureCollection can be cut in two, so that two GDAL processes load it at once.
///
/// GDAL's GeoJSON driver parses a file twice on one core (a schema pass, then the rows): two halves,
/// each a FeatureCollection of its own, load on both cores in a little more than half the time. The cut
/// must fall on a real feature boundary: a comma at the top level of the root object's `features`
/// array, never one inside a string, a property's nested array or a geometry. The scanner follows the
/// JSON structure (strings, escapes, nesting) byte by byte, fed in chunks, and stops at the first such
/// comma at or past the target offset; none (one giant feature, `features` ends first, text it does not
/// follow) means no split.
enum GeoJSONSplit {
    /// Smaller files load in one process: the second process and the merge would cost more than they save.
    static let minimumBytes = 16 << 20

    struct Cut: Equatable {
        /// Offset of the `[` that opens `features`.
        var featuresOpen: Int
        /// Offset of the comma between the last feature of the first half and the first of the second.
        var comma: Int
    }

    struct Scanner {
        let target: Int
        private(set) var cut: Cut?
        private var depth = 0
        private var inString = false, escaped = false
        /// At depth 1 (the root object): whether the next string is a key, and the key being read.
        private var expectKey = false
        private var key: [UInt8] = []
        private var lastKeyIsFeatures = false
        private var featuresOpen: Int?
        private(set) var failed = false

        init(target: Int) { self.target = target }

        /// Whether more bytes can still change the outcome.
        var done: Bool { cut != nil || failed }

        /// Follows `bytes`, which sit at `offset` in the file. The state lives in locals for the loop (it runs
        /// over half of every large file before either GDAL process can start).
        mutating func feed(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
            guard !done, let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
            let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
            var depth = self.depth, inString = self.inString, escaped = self.escaped
            defer {
                self.depth = depth
                self.inString = inString
                self.escaped = escaped
            }
            var i = 0
            let n = bytes.count
            while i < n {
                let b = base[i]
                if inString {
                    if escaped {
                        escaped = false
                    } else if b == backslash {
                        escaped = true
                    } else if b == quote {
                        inString = false
                        if depth == 1 && expectKey {
                            lastKeyIsFeatures = key.elementsEqual("features".utf8)
                            expectKey = false
                        }
                    } else if depth == 1 && expectKey && key.count <= 8 {
                        key.append(b)
                    }
                    i += 1
                    continue
                }
                switch b {
                case quote:
                    inString = true
                    if depth == 1 { key.removeAll(keepingCapacity: true) }
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    if depth == 0 && b != UInt8(ascii: "{") { failed = true; return }
                    if depth == 1 && b == UInt8(ascii: "[") && lastKeyIsFeatures && featuresOpen == nil {
                        featuresOpen = offset + i
                    }
                    depth += 1
                    expectKey = depth == 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    // `features` closed (or the root did) before the target: nothing to cut.
                    if depth < 1 || (depth == 1 && featuresOpen != nil) { failed = true; return }
                case UInt8(ascii: ","):
                    if depth == 1 { expectKey = true; lastKeyIsFeatures = false }
                    if depth == 2, let open = featuresOpen, offset + i >= target {
                        cut = Cut(featuresOpen: open, comma: offset + i)
                        return
                    }
                default:
                    break // numbers, literals, ':' and blanks (CR and LF included)
                }
                i += 1
            }
        }
    }

    /// The cut nearest past the middle of the file at `path`, reading no further than it; nil when there is none.
    static func find(path: String, size: Int) -> Cut? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var scanner = Scanner(target: size / 2)
        var offset = 0
        while !scanner.done, let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { scanner.feed($0, at: offset) }
            offset += chunk.count
        }
        return scanner.cut
    }

    /// The halves, each a FeatureCollection: the first is the file up to the cut, closed with `]}`; the
    /// second is the file's head up to `[` followed by everything after the cut (its other members
    /// included). Members that follow `features` are lost from the first half: the caller cuts only files
    /// whose head told it all the load needs (no `crs` anywhere). Written one at a time, so that the first
    /// half's GDAL starts while the second is written.
    static func writeFirstHalf(_ cut: Cut, of path: String, to first: String) throws {
        try writeFile(first, from: path, [(0, cut.comma)], closing: "\n]}\n")
    }

    static func writeSecondHalf(_ cut: Cut, of path: String, size: Int, to second: String) throws {
        try writeFile(second, from: path, [(0, cut.featuresOpen + 1), (cut.comma + 1, size - cut.comma - 1)], closing: "")
    }

    private static func writeFile(_ path: String, from input: String, _ ranges: [(offset: Int, count: Int)], closing: String) throws {
        let source = open(input, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw ImportFailure("Could not read the file to split it", permanent: false) }
        defer { close(source) }
        let target = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard target >= 0 else { throw ImportFailure("Could not write the split file (\(String(cString: strerror(errno))))", permanent: false) }
        defer { close(target) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for range in ranges {
            var from = range.offset, left = range.count
            while left > 0 {
                let n = buffer.withUnsafeMutableBytes { pread(source, $0.baseAddress, min(left, $0.count), off_t(from)) }
                guard n > 0, buffer.withUnsafeBytes({ write(target, $0.baseAddress, n) }) == n else {
                    throw ImportFailure("Could not write the split file (\(String(cString: strerror(errno))))", permanent: false)
                }
                from += n
                left -= n
            }
        }
        let tail = Array(closing.utf8)
        guard tail.isEmpty || write(target, tail, tail.count) == tail.count else {
            throw ImportFailure("Could not write the split file (\(String(cString: strerror(errno))))", permanent: false)
        }
    }
}
