import DMiloVersion
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// node_exporter textfile-collector output (`*.prom`), rewritten via temp file + rename so a scrape never
/// sees half a file. Counters restart at 0 with the daemon (Prometheus handles counter resets).
public final class MetricsFile: @unchecked Sendable {
    private let lock = NSLock()
    public var path: String?
    private var done = 0
    private var failed = 0
    private var queue = 0
    private var lastDuration: Double?
    private var lastPeakRSS: Int?
    private var lastSuccess: Double?
    private var diskFull = false
    /// nil until the first write; then whether the last write worked (a change is reported once).
    private var lastWriteOK: Bool?
    /// Called when writing starts failing (`false`, with the reason) or works again (`true`).
    public var onStateChange: (@Sendable (Bool, String, String) -> Void)?

    public init(path: String?) { self.path = path }

    public func record(status: String, duration: Double, peakRSS: Int) {
        lock.lock()
        if status == "done" { done += 1; lastSuccess = Date().timeIntervalSince1970 } else { failed += 1 }
        lastDuration = duration
        lastPeakRSS = peakRSS
        lock.unlock()
        write()
    }

    public func setQueue(_ n: Int) { set(\.queue, n) }

    public func setDiskFull(_ full: Bool) { set(\.diskFull, full) }

    /// Sets one gauge under the lock; rewrites the file only when the value changed.
    private func set<T: Equatable>(_ field: ReferenceWritableKeyPath<MetricsFile, T>, _ value: T) {
        lock.lock()
        let changed = self[keyPath: field] != value
        self[keyPath: field] = value
        lock.unlock()
        if changed { write() }
    }

    public func render() -> String {
        lock.lock(); defer { lock.unlock() }
        var s = """
        # HELP dmilo_build_info Version of the running dmilod (value always 1).
        # TYPE dmilo_build_info gauge
        dmilo_build_info{version="\(BuildVersion.semver)",commit="\(BuildVersion.commit)",built="\(BuildVersion.date)"} 1
        # HELP dmilo_jobs_total Jobs finished since the daemon started, by outcome.
        # TYPE dmilo_jobs_total counter
        dmilo_jobs_total{status="done"} \(done)
        dmilo_jobs_total{status="failed"} \(failed)
        # HELP dmilo_queue_length Manifests waiting in incoming/.
        # TYPE dmilo_queue_length gauge
        dmilo_queue_length \(queue)
        # HELP dmilo_disk_full 1 while the spool's disk is full (no job starts; jobs stay queued).
        # TYPE dmilo_disk_full gauge
        dmilo_disk_full \(diskFull ? 1 : 0)

        """
        if let d = lastDuration {
            s += "# HELP dmilo_last_job_duration_seconds Wall time of the last finished job.\n"
            s += "# TYPE dmilo_last_job_duration_seconds gauge\ndmilo_last_job_duration_seconds \(d)\n"
        }
        if let r = lastPeakRSS {
            s += "# HELP dmilo_last_job_peak_rss_bytes Peak resident memory of the daemon during the last job (lifetime peak when jobs > 1).\n"
            s += "# TYPE dmilo_last_job_peak_rss_bytes gauge\ndmilo_last_job_peak_rss_bytes \(r)\n"
        }
        if let t = lastSuccess {
            s += "# HELP dmilo_last_success_timestamp_seconds Unix time of the last job that reached done/.\n"
            s += "# TYPE dmilo_last_success_timestamp_seconds gauge\ndmilo_last_success_timestamp_seconds \(t)\n"
        }
        return s
    }

    /// Rewrites the file (best effort: a metrics failure never stops the daemon).
    @discardableResult
    public func write() -> Bool {
        guard let path else { return false }
        var reason = ""
        do { try FileOps.writeAtomically(Data(render().utf8), to: path) } catch { reason = "\(error)" }
        let ok = reason.isEmpty
        lock.lock()
        let changed = lastWriteOK != ok && !(lastWriteOK == nil && ok)
        lastWriteOK = ok
        let callback = onStateChange
        lock.unlock()
        if changed { callback?(ok, path, reason) }
        return ok
    }

    /// Resets the kernel's peak-RSS mark (VmHWM) so the next reading covers one job only (Linux >= 4.0;
    /// best effort: without it the figure is the daemon's lifetime peak).
    public static func resetPeakRSS() {
        let fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = Glibc.write(fd, "5", 1)
        close(fd)
    }

    /// Peak resident set size of this process (VmHWM), in bytes.
    public static func peakRSSBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return kb * 1024
        }
        return 0
    }
}
