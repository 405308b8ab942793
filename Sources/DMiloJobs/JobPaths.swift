import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Job and file names (docs/INTERFACE.md "The spool").
public enum JobName {
    /// `[A-Za-z0-9._-]{1,128}`, not starting with `.`.
    public static func isValid(_ name: String) -> Bool {
        let u = Array(name.utf8)
        guard (1...128).contains(u.count), u[0] != UInt8(ascii: ".") else { return false }
        return u.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }

    /// A valid name derived from an invalid one, so a badly named job still gets a `failed/` folder.
    public static func sanitized(_ name: String) -> String {
        var out = String(
            name.unicodeScalars.map { s -> Character in
                let c = Character(s)
                return (s.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-")) ? c : "_"
            })
        while out.hasPrefix(".") { out.removeFirst() }
        if out.isEmpty { out = "unnamed" }
        return String(out.prefix(120))
    }
}

/// A file named in a manifest: a plain name of a file that travels with the job, or `calibration/FILE`.
public enum FileReference: Sendable, Equatable, CustomStringConvertible {
    /// A file beside the manifest (moves with the job from `incoming/` to `work/`, `done/` or `failed/`).
    case job(String)
    /// A shared file in the spool's `calibration/` folder (stays there, read-only).
    case calibration(String)

    public var description: String {
        switch self {
        case .job(let n): return n
        case .calibration(let n): return "calibration/\(n)"
        }
    }

    /// Parses a manifest string. Nothing but the two forms resolves: no `..`, no absolute path, no subfolders,
    /// no dot-files (the spool ignores those, so such a job could never become ready).
    public static func parse(_ value: JSONValue, field: String, file: String) throws -> FileReference {
        guard let s = value.stringValue else {
            throw JobError.manifest("\(file): `\(field)` must be a file name string, not \(value.typeName)", field: field)
        }
        var name = s
        var calibration = false
        if s.hasPrefix("calibration/") {
            calibration = true
            name = String(s.dropFirst("calibration/".count))
        }
        guard JobName.isValid(name) else {
            throw JobError.manifest(
                "\(file): `\(field)` = \"\(s.prefix(200))\" is not a plain file name of the job or calibration/FILE "
                    + "(allowed: [A-Za-z0-9._-]{1,128}, not starting with '.'; no '/', '..' or absolute paths)",
                field: field)
        }
        // In incoming/, `*.json` files are manifests: a job file with that suffix would be taken for another job.
        if !calibration && name.hasSuffix(".json") {
            throw JobError.manifest("\(file): `\(field)` = \"\(s)\" ends in .json, which the spool reserves for manifests", field: field)
        }
        return calibration ? .calibration(name) : .job(name)
    }
}

/// Opens files the way the daemon must: never through a symbolic link, regular files only, bounded size.
public enum SafeFile {
    /// Default per-file limit (256 MiB).
    public static let defaultMaxBytes = 256 << 20

    /// Reads the whole file at `path`. `display` names it in errors (e.g. `frame-17.npy`), `field` is the manifest field.
    public static func read(_ path: String, display: String, field: String?, maxBytes: Int = defaultMaxBytes) throws -> Data {
        let fd = try open(path, display: display, field: field, maxBytes: maxBytes)
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw JobError(code: JobError.fileUnreadable, message: "\(display): cannot stat (\(errnoText()))", field: field)
        }
        let size = Int(st.st_size)
        var data = Data(count: size)
        var done = 0
        let ok = data.withUnsafeMutableBytes { (buf: UnsafeMutableRawBufferPointer) -> Bool in
            while done < size {
                let n = Glibc.read(fd, buf.baseAddress! + done, size - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                if n == 0 { break }
                done += n
            }
            return true
        }
        guard ok, done == size else {
            throw JobError(code: JobError.fileUnreadable, message: "\(display): read failed or file shrank while reading", field: field)
        }
        return data
    }

    /// Opens `path` read-only with `O_NOFOLLOW` and checks it is a regular file of at most `maxBytes`.
    /// Returns the descriptor (caller closes). Errors: `file.missing`, `file.unreadable`.
    public static func open(_ path: String, display: String, field: String?, maxBytes: Int = defaultMaxBytes) throws -> Int32 {
        // O_NONBLOCK: a FIFO planted in the spool must not hang the daemon in open(2).
        let fd = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            let e = errno
            if e == ENOENT {
                throw JobError(code: JobError.fileMissing, message: "\(display)\(fieldNote(field)) does not exist", field: field)
            }
            if e == ELOOP {
                throw JobError(
                    code: JobError.fileUnreadable,
                    message: "\(display)\(fieldNote(field)) is a symbolic link; links are never followed", field: field)
            }
            throw JobError(
                code: JobError.fileUnreadable, message: "\(display)\(fieldNote(field)) cannot be opened: \(String(cString: strerror(e)))",
                field: field)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw JobError(code: JobError.fileUnreadable, message: "\(display): cannot stat (\(errnoText()))", field: field)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            let kind = (st.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file"
            throw JobError(code: JobError.fileUnreadable, message: "\(display)\(fieldNote(field)) is \(kind)", field: field)
        }
        // A second name means the file may live outside the spool (a hard link made by a client): refused like a symlink.
        guard st.st_nlink <= 1 else {
            close(fd)
            throw JobError(
                code: JobError.fileUnreadable,
                message: "\(display)\(fieldNote(field)) has \(st.st_nlink) hard links; files with more than one name are refused like symbolic links", field: field)
        }
        guard Int(st.st_size) <= maxBytes else {
            close(fd)
            throw JobError(
                code: JobError.fileUnreadable,
                message: "\(display)\(fieldNote(field)) is \(st.st_size) bytes, over the limit of \(maxBytes)", field: field)
        }
        // Back to blocking reads for a regular file.
        _ = fcntl(fd, F_SETFL, O_RDONLY)
        return fd
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    static func fieldNote(_ field: String?) -> String { field.map { " (field `\($0)`)" } ?? "" }
}
