import DMiloJobs
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// POSIX file operations the spool protocol is built on (rename atomicity, fsync, no-replace moves).
enum FileOps {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// The errno behind it (0 = not a system call's failure).
        var code: Int32 = 0
    }

    static func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

    /// fsync a file or directory by path (directories: makes renames/creations inside them durable).
    @discardableResult
    static func fsyncPath(_ path: String) -> Bool {
        // O_NONBLOCK: a FIFO among a job's files must not block open(2); only files and folders are synced.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG || (st.st_mode & S_IFMT) == S_IFDIR else { return false }
        return fsync(fd) == 0
    }

    /// Writes `data` to `path` via a temp file in the same folder, fsync, rename, fsync folder.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = "\(dir)/.\((path as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else {
            let e = errno
            throw Failure(description: "cannot create \(tmp): \(errnoText(e))", code: e)
        }
        var ok = true
        data.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 { if errno == EINTR { continue }; ok = false; break }
                off += n
            }
        }
        if fsync(fd) != 0 { ok = false }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw Failure(description: "cannot write \(path): \(errnoText(e))", code: e)
        }
        fsyncPath(dir)
    }

    /// Moves a file (or symlink) without ever replacing an existing destination: link(2) fails with EEXIST
    /// where rename(2) would silently overwrite. Returns false (errno set) on failure; source untouched then.
    static func moveNoReplace(_ src: String, _ dst: String) -> Bool {
        if link(src, dst) == 0 {
            unlink(src)
            return true
        }
        // Directories cannot be hard-linked: rename, but only after checking the destination is absent.
        if errno == EPERM || errno == EISDIR {
            var st = stat()
            if lstat(dst, &st) == 0 { errno = EEXIST; return false }
            return rename(src, dst) == 0
        }
        return false
    }

    /// Creates a folder `parent/base`, or `base.1`, `base.2`, … if taken. mkdir(2) is exclusive, so two
    /// daemons never get the same folder. Returns the name created.
    static func makeUniqueDirectory(in parent: String, base: String, separator: String = ".") throws -> String {
        for i in 0..<10_000 {
            let name = i == 0 ? base : "\(base)\(separator)\(i)"
            if mkdir("\(parent)/\(name)", 0o750) == 0 { return name }
            if errno != EEXIST { throw Failure(description: "cannot create \(parent)/\(name): \(errnoText())") }
        }
        throw Failure(description: "no free folder name for \(base) in \(parent)")
    }

    /// Plain entries of a folder (no `.`/`..`), as raw names. Empty on error.
    static func list(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    /// Entries of a folder as raw bytes (no `.`/`..`): names that are not UTF-8 survive, unlike ``list(_:)``.
    static func listRaw(_ dir: String) -> [[UInt8]] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [[UInt8]] = []
        while let e = readdir(d) {
            let bytes = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: UInt8.self, capacity: 256) { p -> [UInt8] in
                    var n = 0
                    while n < 256 && p[n] != 0 { n += 1 }
                    return Array(UnsafeBufferPointer(start: p, count: n))
                }
            }
            if bytes != [0x2E] && bytes != [0x2E, 0x2E] { out.append(bytes) }
        }
        return out
    }

    /// rename(2) with a raw-byte source name inside `dir`.
    static func renameRaw(dir: String, name: [UInt8], to dst: String) -> Bool {
        var path = Array(dir.utf8) + [0x2F] + name + [0]
        return path.withUnsafeMutableBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { rename($0, dst) == 0 }
        }
    }

    static func lexists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func mtime(_ path: String) -> Double? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) * 1e-9
    }

    /// Removes a folder tree of daemon-made outputs (never inputs).
    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Removes `parent/name` and everything below it without ever following a symbolic link: each folder is opened
    /// with `O_NOFOLLOW | O_DIRECTORY` relative to its parent's descriptor and its entries are unlinked through that
    /// descriptor, so a link (or a folder swapped for a link meanwhile) is removed as a link and nothing outside
    /// the tree is touched. True when `parent/name` is gone.
    @discardableResult
    static func removeTreeNoFollow(parent: String, name: String) -> Bool {
        let pfd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard pfd >= 0 else { return false }
        defer { close(pfd) }
        return removeTreeAt(pfd, name, depth: 0)
    }

    private static func removeTreeAt(_ pfd: Int32, _ name: String, depth: Int) -> Bool {
        guard name != "." && name != ".." && !name.contains("/") else { return false }
        let fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            // Not a folder (a file, a symlink, a FIFO): unlink the entry itself.
            return unlinkat(pfd, name, 0) == 0 || errno == ENOENT
        }
        guard depth < 64, let d = fdopendir(fd) else {
            close(fd)
            return false
        }
        var names: [String] = []
        while let e = readdir(d) {
            let n = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if n != "." && n != ".." { names.append(n) }
        }
        let dfd = dirfd(d)
        for n in names { _ = removeTreeAt(dfd, n, depth: depth + 1) }
        closedir(d)
        return unlinkat(pfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT
    }

    /// fsync every regular file directly inside `dir`, then `dir` itself.
    static func fsyncFolder(_ dir: String) {
        for name in list(dir) where !isDirectory("\(dir)/\(name)") { fsyncPath("\(dir)/\(name)") }
        fsyncPath(dir)
    }

    static func readSmall(_ path: String) -> String? {
        guard let d = try? SafeFileRead.small(path) else { return nil }
        return String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

enum SafeFileRead {
    static func small(_ path: String) throws -> Data {
        try SafeFile.read(path, display: path, field: nil, maxBytes: 1 << 16)
    }
}
