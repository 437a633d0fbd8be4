import CLibPQ
import Foundation

/// Owns one `PGresult`. Values are in text format; `nil` means SQL NULL.
public final class PGResult: @unchecked Sendable {
    private(set) var handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQclear(handle) }

    /// Takes over `raw` in place of the result held so far, which is cleared: single-row mode makes a result
    /// per row, and a new wrapper object per row was a measurable share of a 100-row request's CPU.
    func adopt(_ raw: OpaquePointer) {
        PQclear(handle)
        handle = raw
    }

    public var rowCount: Int { Int(PQntuples(handle)) }
    /// A row delivered in single-row mode; the statement's final result (with its command status) follows.
    public var isSingleRow: Bool { PQresultStatus(handle) == PGRES_SINGLE_TUPLE }
    public var columnCount: Int { Int(PQnfields(handle)) }
    public var commandStatus: String { String(cString: PQcmdStatus(handle)) }
    /// Whether the command status is `tag`, without making a String of it (every reset checks a dozen).
    func hasCommandStatus(_ tag: String) -> Bool { tag.withCString { strcmp(PQcmdStatus(handle), $0) == 0 } }
    /// Rows affected by INSERT/UPDATE/DELETE, when the command reports it.
    public var affectedRows: Int? { Int(String(cString: PQcmdTuples(handle))) }

    public func columnName(_ column: Int) -> String { String(cString: PQfname(handle, Int32(column))) }
    public func columnType(_ column: Int) -> UInt32 { PQftype(handle, Int32(column)) }

    public func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(handle, Int32(row), Int32(column)) == 1 }

    public func string(_ row: Int, _ column: Int) -> String? {
        if isNull(row, column) { return nil }
        return String(cString: PQgetvalue(handle, Int32(row), Int32(column)))
    }

    /// Raw bytes of a value (nil for NULL) without copying them: the SQL API's hot path. They live in this
    /// result, so they are valid only while the caller holds it. Not generic (no closure) because it is called
    /// from another module once per value, where a generic call would not be specialized.
    public func value(_ row: Int, _ column: Int) -> UnsafeBufferPointer<UInt8>? {
        if isNull(row, column) { return nil }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        let pointer = UnsafeRawPointer(PQgetvalue(handle, Int32(row), Int32(column))!).assumingMemoryBound(to: UInt8.self)
        return UnsafeBufferPointer(start: pointer, count: length)
    }

    /// A value's bytes (for binary results such as bytea).
    public func bytes(_ row: Int, _ column: Int) -> [UInt8]? { withExtendedLifetime(self) { value(row, column).map(Array.init) } }

    public func int(_ row: Int, _ column: Int) -> Int? { string(row, column).flatMap { Int($0) } }
    public func bool(_ row: Int, _ column: Int) -> Bool? { string(row, column).map { $0 == "t" } }
    public func double(_ row: Int, _ column: Int) -> Double? { string(row, column).flatMap { Double($0) } }

    /// Column index by name, for readable repository code.
    public func column(_ name: String) -> Int? {
        let i = PQfnumber(handle, name)
        return i < 0 ? nil : Int(i)
    }

    public subscript(row: Int, name: String) -> String? {
        guard let c = column(name) else { return nil }
        return string(row, c)
    }
}
