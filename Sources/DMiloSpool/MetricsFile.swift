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
    /// Wall time of finished jobs, by outcome (`done`, `failed`).
    private var durations: [String: Histogram] = [:]
    /// UNet evaluations of jobs that reached `done/`.
    private var evaluations = Histogram(bounds: MetricsFile.evaluationBounds)
    /// Failed jobs by the code in their error.json.
    private var failuresByCode: [String: Int] = [:]
    /// Result folders removed by retention, by parent (`done`, `failed`).
    private var retentionDeleted: [String: Int] = [:]
    /// nil until the first write; then whether the last write worked (a change is reported once).
    private var lastWriteOK: Bool?
    /// Why the last write failed and its errno (nil while writes work or no path is set).
    private var failure: (reason: String, code: Int32)?
    /// Called when writing starts failing (`false`, with the reason) or works again (`true`).
    public var onStateChange: (@Sendable (Bool, String, String) -> Void)?

    public init(path: String?) { self.path = path }

    /// Seconds: from a model-free test job to a long DMPlug run on a small box.
    static let durationBounds: [Double] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]
    /// Per-method defaults are about 500 evaluations; `max_budget` defaults to 2000.
    static let evaluationBounds: [Double] = [0, 50, 100, 250, 500, 1000, 2000, 5000, 10000]

    /// Cumulative Prometheus histogram: `counts[i]` = observations <= `bounds[i]`; `+Inf` is `count`.
    struct Histogram {
        var bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0
        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }
        mutating func observe(_ v: Double) {
            for (i, b) in bounds.enumerated() where v <= b { counts[i] += 1 }
            sum += v
            count += 1
        }
        func render(_ name: String, labels: String = "") -> String {
            let sep = labels.isEmpty ? "" : ","
            var s = ""
            for (b, c) in zip(bounds, counts) {
                s += "\(name)_bucket{\(labels)\(sep)le=\"\(MetricsFile.number(b))\"} \(c)\n"
            }
            s += "\(name)_bucket{\(labels)\(sep)le=\"+Inf\"} \(count)\n"
            let braces = labels.isEmpty ? "" : "{\(labels)}"
            return s + "\(name)_sum\(braces) \(sum)\n\(name)_count\(braces) \(count)\n"
        }
    }

    static func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(v)" }

    /// A finished job: `status` `done` (with its UNet evaluations) or `failed` (with its error code).
    public func record(
        status: String, duration: Double, peakRSS: Int, unetEvaluations: Int? = nil,
        errorCode: String? = nil
    ) {
        lock.lock()
        if status == "done" { done += 1; lastSuccess = Date().timeIntervalSince1970 } else { failed += 1 }
        lastDuration = duration
        lastPeakRSS = peakRSS
        durations[status, default: Histogram(bounds: MetricsFile.durationBounds)].observe(duration)
        if status == "done", let e = unetEvaluations { evaluations.observe(Double(e)) }
        if status == "failed" { failuresByCode[errorCode ?? "internal.error", default: 0] += 1 }
        lock.unlock()
        write()
    }

    /// Result folders deleted by retention under `folder` (`done` or `failed`).
    public func recordRetention(folder: String, deleted: Int) {
        guard deleted > 0 else { return }
        lock.lock()
        retentionDeleted[folder, default: 0] += deleted
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
        s += "# HELP dmilo_job_duration_seconds Wall time of finished jobs, by outcome.\n"
        s += "# TYPE dmilo_job_duration_seconds histogram\n"
        for status in ["done", "failed"] {
            let h = durations[status] ?? Histogram(bounds: MetricsFile.durationBounds)
            s += h.render("dmilo_job_duration_seconds", labels: "status=\"\(status)\"")
        }
        s += "# HELP dmilo_job_unet_evaluations UNet evaluations of jobs that reached done/.\n"
        s += "# TYPE dmilo_job_unet_evaluations histogram\n"
        s += evaluations.render("dmilo_job_unet_evaluations")
        s += "# HELP dmilo_job_failures_total Jobs moved to failed/ since the daemon started, by error code.\n"
        s += "# TYPE dmilo_job_failures_total counter\n"
        for (code, n) in failuresByCode.sorted(by: { $0.key < $1.key }) {
            s += "dmilo_job_failures_total{code=\"\(code)\"} \(n)\n"
        }
        s += "# HELP dmilo_retention_deleted_total Result folders deleted by the retention limits since the start.\n"
        s += "# TYPE dmilo_retention_deleted_total counter\n"
        for folder in ["done", "failed"] {
            s += "dmilo_retention_deleted_total{folder=\"\(folder)\"} \(retentionDeleted[folder] ?? 0)\n"
        }
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
        var code: Int32 = 0
        do { try FileOps.writeAtomically(Data(render().utf8), to: path) } catch {
            reason = "\(error)"
            code = (error as? FileOps.Failure)?.code ?? 0
        }
        let ok = reason.isEmpty
        lock.lock()
        let changed = lastWriteOK != ok && !(lastWriteOK == nil && ok)
        lastWriteOK = ok
        failure = ok ? nil : (reason, code == 0 ? EIO : code)
        let callback = onStateChange
        lock.unlock()
        if changed { callback?(ok, path, reason) }
        return ok
    }

    /// Why the metrics file cannot be written, with the errno, or nil (writes work, or no `metrics_file`).
    public var problem: (reason: String, code: Int32)? {
        lock.lock(); defer { lock.unlock() }
        return path == nil ? nil : failure
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
