#if canImport(Glibc)
import Glibc
#endif

/// Writing a whole file durably: create or truncate (never through a symbolic link), write everything, fsync.
/// Callers that publish atomically write to a temp name first and rename afterwards.
public enum SyncedFile {
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw FormatError(file: path, "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError(file: path, "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw FormatError(file: path, "fsync failed: \(String(cString: strerror(errno)))") }
    }
}
