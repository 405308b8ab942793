import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// inotify on spool folders (IN_CLOSE_WRITE | IN_MOVED_TO): wakes the daemon when a client finishes a file or
/// renames one into `incoming/` or `cancel/`, and `dmilo wait` when a result is renamed into `done/` or `failed/`.
/// Events are lossy (queue overflow, restarts), so the daemon also rescans periodically.
final class IncomingWatcher: @unchecked Sendable {
    private let fd: Int32

    /// nil if inotify is unavailable (the daemon then relies on rescans).
    convenience init?(directory: String) { self.init(directories: [directory]) }

    /// One descriptor watching every folder in `directories`; nil if any of them cannot be watched.
    init?(directories: [String]) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        // Returning nil after `fd` is set runs deinit, which closes it.
        for directory in directories where inotify_add_watch(fd, directory, UInt32(IN_CLOSE_WRITE | IN_MOVED_TO)) < 0 {
            return nil
        }
    }

    deinit { close(fd) }

    /// Waits up to `timeout` seconds for events; returns true if any arrived (their contents do not matter:
    /// any change triggers a rescan, so a burst of 100 files costs one scan).
    func wait(timeout: Double) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ms = Int32(max(0, min(timeout, 3600)) * 1000)
        let r = poll(&p, 1, ms)
        guard r > 0 else { return false }
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        var any = false
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            any = true
        }
        return any
    }
}
