import DMiloSolvers
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A running job's state as the daemon publishes it: `work/NAME/progress.json` and systemd `STATUS=`
/// (docs/INTERFACE.md "Progress of a running job").
public struct JobProgress: Sendable, Equatable {
    public var method: String
    /// What the job is doing: `starting`, the solver's own stage (`layer 2/3 step 11/100`), `writing results`.
    public var stage: String
    /// Outer iteration (1-based; 0 before the first) and the inner one within it.
    public var outer = 0
    public var inner = 0
    public var unetEvaluations = 0
    /// The job's UNet evaluation budget (nil: unlimited).
    public var budget: Int?
    /// The latest ‖y − A(x)‖/‖y‖ the solver computed (nil before the first outer iterate).
    public var residual: Double?
    public var elapsedSeconds = 0.0

    /// A job's progress before its first evaluation; the solver's reports fill in the rest.
    public init(method: String, stage: String, budget: Int? = nil) {
        self.method = method
        self.stage = stage
        self.budget = budget
    }

    /// The fields of progress.json.
    public var jsonObject: [String: Any] {
        [
            "method": method, "stage": stage, "outer": outer, "inner": inner, "unet_evaluations": unetEvaluations,
            "budget": budget.map { $0 as Any } ?? NSNull(),
            "residual": residual.flatMap { $0.isFinite ? $0 as Any : nil } ?? NSNull(),
            "elapsed_seconds": (elapsedSeconds * 10).rounded() / 10,
        ]
    }

    /// Reads progress.json back (as parsed by JSONSerialization); nil if `method` or `stage` is missing.
    public init?(jsonObject o: [String: Any]) {
        guard let method = o["method"] as? String, let stage = o["stage"] as? String else { return nil }
        self.init(method: method, stage: stage, budget: o["budget"] as? Int)
        (outer, inner, unetEvaluations) = (o["outer"] as? Int ?? 0, o["inner"] as? Int ?? 0, o["unet_evaluations"] as? Int ?? 0)
        (residual, elapsedSeconds) = (o["residual"] as? Double, o["elapsed_seconds"] as? Double ?? 0)
    }

    /// Budget used, in [0, 1] (0 without a budget).
    public var fraction: Double {
        guard let b = budget, b > 0 else { return 0 }
        return min(1, Double(unetEvaluations) / Double(b))
    }

    /// One line for systemd `STATUS=` and logs: the same facts as progress.json.
    public var summary: String {
        var s = "\(method) \(stage)"
        if outer > 0 { s += ", outer \(outer)" }
        s += ", \(unetEvaluations)/\(budget.map(String.init) ?? "∞") UNet evaluations"
        if let r = residual, r.isFinite { s += String(format: ", residual %.4g", r) }
        return s + String(format: ", %.0f s", elapsedSeconds)
    }
}

extension JobControl {
    /// Reports a job's progress: at most once a second (whatever the call rate) it rewrites ``progressFile``
    /// atomically (temp file + rename) and passes the summary to the daemon's progress callback.
    public func report(_ p: JobProgress) {
        let now = Date().timeIntervalSince1970
        let (due, path): (Bool, String?) = lock.withLock {
            guard now - lastReport >= 1 else { return (false, nil) }
            lastReport = now
            return (true, progressPath)
        }
        guard due else { return }
        if let path { Self.write(p, to: path) }
        progress(p.fraction, p.summary)
    }

    /// Temp file beside progress.json (a dot-file: never taken for a job file; the spool removes it with the job).
    public static let progressTempName = ".progress.json.tmp"

    /// No fsync: progress is ephemeral, only its atomicity matters (a reader never sees half a file). A failed write
    /// (e.g. the job's folder was deleted) is ignored: progress must never fail a job.
    static func write(_ p: JobProgress, to path: String) {
        guard let data = try? JSONSerialization.data(withJSONObject: p.jsonObject, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        let tmp = (path as NSString).deletingLastPathComponent + "/" + progressTempName
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { return }
        let bytes = data + Data("\n".utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if written != bytes.count || rename(tmp, path) != 0 { unlink(tmp) }
    }
}

/// The job runner's ``EvaluationMonitor``: keeps the latest solver progress, publishes it through ``JobControl``
/// (rate-limited there) and stops the solver at its next UNet evaluation once the job is cancelled. A flag read per
/// evaluation; the daemon sets it from its cancel/ watcher, or a worker from SIGTERM.
public final class JobProgressMonitor: EvaluationMonitor, @unchecked Sendable {
    private let control: JobControl
    private let started: Date
    private var current: JobProgress

    public init(control: JobControl, method: String, budget: Int?, started: Date = Date()) {
        self.control = control
        self.started = started
        current = JobProgress(method: method, stage: "starting", budget: budget)
        publish()
    }

    public func evaluated(total: Int, budget: Int) throws {
        if control.isCancelled { throw JobCancelled() }
        current.unetEvaluations = total
        publish()
    }

    /// Takes the solver's own report (stage, iterations, residual); returns false once the job is cancelled.
    public func update(_ pr: SolverProgress) -> Bool {
        current.stage = pr.stage
        current.outer = pr.iteration
        current.inner = pr.inner
        current.unetEvaluations = pr.unetEvaluations
        if let r = pr.residual { current.residual = r }
        publish()
        return !control.isCancelled
    }

    /// A stage outside the solver (`writing results`).
    public func stage(_ s: String, residual: Double? = nil) {
        current.stage = s
        if let residual { current.residual = residual }
        publish()
    }

    private func publish() {
        current.elapsedSeconds = Date().timeIntervalSince(started)
        control.report(current)
    }
}
