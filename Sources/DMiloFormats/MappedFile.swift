// Read-only memory mapping of a whole file. Weights are mapped, not read, so a 400 MB checkpoint costs page cache
// rather than heap, and F16/BF16 tensors can be converted straight from the mapping.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Π dims in checked arithmetic: nil when a dimension is negative or the product overflows (sizes read from a
/// header are checked before anything is sized from them).
public func checkedElementCount(_ dims: [Int]) -> Int? {
    var n = 1
    for d in dims {
        let (p, o) = n.multipliedReportingOverflow(by: d)
        guard d >= 0, !o else { return nil }
        n = p
    }
    return n
}

/// A file mapped read-only (PROT_READ, MAP_PRIVATE). The mapping lives as long as the object.
public final class MappedFile: @unchecked Sendable {
    /// The path it was opened with (used in error messages).
    public let path: String
    /// File size in bytes.
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    /// Maps `path`. Throws a `FormatError` naming the file when it cannot be opened, is not a regular file, or
    /// cannot be mapped. Empty files are allowed (`bytes` is then empty).
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FormatError(file: path, "cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw FormatError(file: path, "cannot stat (\(String(cString: strerror(errno))))") }
        if (st.st_mode & S_IFMT) != S_IFREG { throw FormatError(file: path, "not a regular file") }
        count = Int(st.st_size)
        if count == 0 { base = nil; return }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        if p == MAP_FAILED || p == nil {
            throw FormatError(file: path, "cannot map \(count) bytes (\(String(cString: strerror(errno))))")
        }
        base = p
    }

    deinit { if let base { munmap(base, count) } }

    /// The whole file.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Bytes [offset, offset+length), or a `FormatError` naming `what` when the range is outside the file.
    public func slice(_ offset: Int, _ length: Int, what: String) throws -> UnsafeRawBufferPointer {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else {
            throw FormatError(
                file: path, field: what,
                "needs bytes \(offset)..<\(offset &+ length) but the file has \(count) (truncated?)")
        }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
    }

    /// Tells the kernel the pages covering [offset, offset+length) are not needed for now (MADV_DONTNEED): they leave
    /// the resident set and are re-read from the file if touched again. Used after converting a tensor to float32,
    /// so loading a checkpoint does not hold the file and its float32 copy in memory at the same time.
    public func dropPages(_ offset: Int, _ length: Int) {
        guard let base, length > 0, offset >= 0, offset + length <= count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset / page) * page, end = min(count, ((offset + length + page - 1) / page) * page)
        _ = madvise(base + start, end - start, MADV_DONTNEED)
    }

    /// Little-endian UInt64 at `offset` (bounds-checked).
    public func uint64LE(at offset: Int, what: String) throws -> UInt64 {
        let s = try slice(offset, 8, what: what)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(s[i]) << (8 * UInt64(i)) }
        return v
    }
}
