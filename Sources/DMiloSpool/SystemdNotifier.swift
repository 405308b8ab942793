import CSystemd
import Foundation

/// sd_notify(3) wrapper: READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1. A no-op outside systemd
/// (NOTIFY_SOCKET unset). The watchdog interval comes from sd_watchdog_enabled(3) (WATCHDOG_USEC/WATCHDOG_PID).
public final class SystemdNotifier: @unchecked Sendable {
    private let lock = NSLock()
    private var lastPing = 0.0
    private var lastStatus = ""
    private var lastErrno: Int32 = 0
    /// Seconds between watchdog pings (half of WATCHDOG_USEC), nil when the watchdog is off.
    public let pingInterval: Double?

    public init(watchdog: Bool = true) {
        var usec: UInt64 = 0
        if watchdog, sd_watchdog_enabled(0, &usec) > 0, usec > 0 {
            pingInterval = Double(usec) / 2e6
        } else {
            pingInterval = nil
        }
    }

    public func send(_ state: String) {
        _ = state.withCString { sd_notify(0, $0) }
    }

    public func ready() { send("READY=1") }

    public func stopping() { send("STOPPING=1") }

    /// RELOADING=1 with MONOTONIC_USEC (required by Type=notify-reload, harmless for Type=notify).
    public func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    /// Sends STATUS= when it changed (one line).
    public func status(_ text: String) {
        let line = text.replacingOccurrences(of: "\n", with: " ")
        lock.lock()
        let changed = line != lastStatus
        lastStatus = line
        lock.unlock()
        if changed { send("STATUS=\(line)") }
    }

    /// ERRNO= when it changed: non-zero while the daemon works with a degraded part (an unusable metrics file).
    public func errorNumber(_ code: Int32) {
        lock.lock()
        let changed = code != lastErrno
        lastErrno = code
        lock.unlock()
        if changed { send("ERRNO=\(code)") }
    }

    /// WATCHDOG=1 if half the interval has passed since the last ping. Call only from code that proves progress.
    public func watchdogPing() {
        guard let interval = pingInterval else { return }
        let now = Date().timeIntervalSince1970
        lock.lock()
        let due = now - lastPing >= interval
        if due { lastPing = now }
        lock.unlock()
        if due { send("WATCHDOG=1") }
    }
}
