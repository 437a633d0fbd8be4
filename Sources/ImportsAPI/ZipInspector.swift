import Foundation

/// Reads a zip archive's central directory (archive inspection, not a geo format) so that an archive is
/// judged before anything is extracted: zip slip (`..`, absolute paths), symlinks, encryption, entry
/// count and declared uncompressed size (zip bombs) are refused from the directory alone.
struct ZipInspector {
    struct Entry: Equatable {
        let name: String
        let compressedSize: UInt64
        let uncompressedSize: UInt64
        let isDirectory: Bool
    }

    struct Limits {
        var maxEntries: Int
        var maxUncompressedBytes: UInt64
        /// Declared uncompressed / archive size above which a large archive is treated as a bomb.
        var maxRatio: UInt64 = 100
        /// Below this total the ratio is not checked (tiny, very repetitive files are fine).
        var ratioFloor: UInt64 = 100 << 20
    }

    static func corrupt(_ why: String = "") -> ImportFailure {
        ImportFailure("The file is not a valid zip archive (corrupt or truncated)" + (why.isEmpty ? "" : ": \(why)"))
    }

    static func inspect(path: String, limits: Limits) throws -> [Entry] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ImportFailure("The archive could not be read", permanent: false) }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        func read(_ offset: UInt64, _ count: Int) throws -> [UInt8] {
            guard offset <= size, UInt64(count) <= size - offset else { throw corrupt("directory beyond end of file") }
            try handle.seek(toOffset: offset)
            let data = try handle.read(upToCount: count) ?? Data()
            guard data.count == count else { throw corrupt("short read") }
            return [UInt8](data)
        }
        guard size >= 22 else { throw corrupt() }
        // End of central directory record: the last one within the final 64 KiB + 22 bytes.
        let tailLength = Int(min(size, 65_557))
        let tailStart = size - UInt64(tailLength)
        let tail = try read(tailStart, tailLength)
        var eocd = -1
        var i = tailLength - 22
        while i >= 0 {
            if tail[i] == 0x50, tail[i + 1] == 0x4B, tail[i + 2] == 0x05, tail[i + 3] == 0x06 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw corrupt("no end-of-directory record") }
        var disk = UInt64(le16(tail, eocd + 4)), cdDisk = UInt64(le16(tail, eocd + 6))
        var count = UInt64(le16(tail, eocd + 10))
        var cdSize = UInt64(le32(tail, eocd + 12)), cdOffset = UInt64(le32(tail, eocd + 16))
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // ZIP64: the locator sits just before the classic record and points at the ZIP64 record.
            guard tailStart + UInt64(eocd) >= 20 else { throw corrupt("ZIP64 locator missing") }
            let locator = tailStart + UInt64(eocd) - 20
            let loc = try read(locator, 20)
            guard le32(loc, 0) == 0x0706_4B50 else { throw corrupt("ZIP64 locator missing") }
            let record = try read(le64(loc, 8), 56)
            guard le32(record, 0) == 0x0606_4B50 else { throw corrupt("ZIP64 record missing") }
            disk = UInt64(le32(record, 16)); cdDisk = UInt64(le32(record, 20))
            count = le64(record, 32); cdSize = le64(record, 40); cdOffset = le64(record, 48)
        }
        guard disk == 0, cdDisk == 0 else { throw ImportFailure("Multi-part (spanned) zip archives are not supported") }
        guard count > 0 else { throw ImportFailure("The archive is empty") }
        guard count <= UInt64(limits.maxEntries) else {
            throw ImportFailure("The archive has \(count) entries; at most \(limits.maxEntries) are accepted")
        }
        guard cdSize <= 64 << 20, cdOffset <= size, cdSize <= size - cdOffset else { throw corrupt("bad directory size") }
        let cd = try read(cdOffset, Int(cdSize))
        var entries: [Entry] = []
        var p = 0
        var total: UInt64 = 0
        for _ in 0..<count {
            guard p + 46 <= cd.count, le32(cd, p) == 0x0201_4B50 else { throw corrupt("bad directory entry") }
            let madeBy = cd[p + 5]
            let flags = le16(cd, p + 8)
            var compressed = UInt64(le32(cd, p + 20)), uncompressed = UInt64(le32(cd, p + 24))
            let nameLength = Int(le16(cd, p + 28)), extraLength = Int(le16(cd, p + 30)), commentLength = Int(le16(cd, p + 32))
            let external = le32(cd, p + 38)
            guard p + 46 + nameLength + extraLength + commentLength <= cd.count else { throw corrupt("bad directory entry") }
            let nameBytes = Array(cd[(p + 46)..<(p + 46 + nameLength)])
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = le16(cd, e), length = Int(le16(cd, e + 2))
                if id == 0x0001 {
                    var q = e + 4
                    if uncompressed == 0xFFFF_FFFF, q + 8 <= e + 4 + length { uncompressed = le64(cd, q); q += 8 }
                    if compressed == 0xFFFF_FFFF, q + 8 <= e + 4 + length { compressed = le64(cd, q); q += 8 }
                }
                e += 4 + length
            }
            p = extraEnd + commentLength
            let name = try checkedName(nameBytes)
            if flags & 0x1 != 0 { throw ImportFailure("Encrypted zip archives are not supported (\(name))") }
            // Unix attributes (made by 3): the file type lives in the high 16 bits.
            if madeBy == 3, (external >> 16) & 0o170000 == 0o120000 {
                throw ImportFailure("The archive contains a symbolic link (\(name)); archives with links are refused")
            }
            let (sum, overflow) = total.addingReportingOverflow(uncompressed)
            guard !overflow else { throw ImportFailure("The archive's declared size is invalid (zip bomb?)") }
            total = sum
            entries.append(Entry(name: name, compressedSize: compressed, uncompressedSize: uncompressed,
                                 isDirectory: name.hasSuffix("/")))
        }
        if total > limits.maxUncompressedBytes {
            throw ImportFailure("The archive expands to \(total) bytes, more than the \(limits.maxUncompressedBytes) allowed (zip bomb?)")
        }
        if total > limits.ratioFloor && total / max(size, 1) > limits.maxRatio {
            throw ImportFailure("The archive expands \(total / max(size, 1))-fold, more than \(limits.maxRatio)× allowed (zip bomb?)")
        }
        return entries
    }

    /// Entry names are relative paths inside the archive: no absolute paths, no `..`, no NUL, no drive letters.
    static func checkedName(_ bytes: [UInt8]) throws -> String {
        let name = String(decoding: bytes, as: UTF8.self)
        let shown = String(name.prefix(80))
        guard !bytes.isEmpty, !bytes.contains(0) else { throw ImportFailure("The archive has an entry with an invalid name") }
        if bytes[0] == UInt8(ascii: "/") || bytes[0] == UInt8(ascii: "\\") || (bytes.count > 1 && bytes[1] == UInt8(ascii: ":")) {
            throw ImportFailure("The archive has an entry with an absolute path (\(shown)); refused")
        }
        let parts = name.split(omittingEmptySubsequences: false) { $0 == "/" || $0 == "\\" }
        if parts.contains("..") { throw ImportFailure("The archive has an entry that escapes its folder (\(shown)); refused") }
        return name
    }

    static func le16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    static func le32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }
    static func le64(_ b: [UInt8], _ o: Int) -> UInt64 { UInt64(le32(b, o)) | UInt64(le32(b, o + 4)) << 32 }
}
