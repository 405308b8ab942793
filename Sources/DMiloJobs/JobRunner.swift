import Foundation

/// Daemon settings a runner needs for one job (from the config at the time the job starts; SIGHUP may change them).
public struct JobSettings: Sendable {
    /// Solver defaults for this job's operator type, already overridden by the manifest's `solver`.
    public var solver: SolverSettings
    /// Cap on UNet evaluations; a manifest `solver.budget` above it is lowered to it.
    public var maxBudget: Int
    /// Worker threads for kernels (0 = library default).
    public var threads: Int
    /// Memory budget in MiB (0 = unlimited); exceed it with `memory.budget`.
    public var memoryBudgetMB: Int
    /// Per-file size limit in bytes.
    public var maxFileBytes: Int

    public init(
        solver: SolverSettings = SolverSettings(), maxBudget: Int = 1000, threads: Int = 0,
        memoryBudgetMB: Int = 0, maxFileBytes: Int = SafeFile.defaultMaxBytes
    ) {
        self.solver = solver
        self.maxBudget = maxBudget
        self.threads = threads
        self.memoryBudgetMB = memoryBudgetMB
        self.maxFileBytes = maxFileBytes
    }
}

/// A job the daemon has claimed: its manifest is parsed and every file it names has been checked
/// (exists, regular file, not a symlink, within the size limit). Shared by `dmilod` and `dmilo reconstruct`.
public struct ClaimedJob: Sendable {
    /// Job name (the manifest's file name without `.json`).
    public var name: String
    public var manifest: Manifest
    /// Folder holding the manifest and the job's own files (`work/NAME` in the daemon, the manifest's folder in the CLI).
    public var jobDirectory: URL
    /// The spool's `calibration/` folder (or `calibration/` beside the manifest for the CLI).
    public var calibrationDirectory: URL
    public var settings: JobSettings

    public init(name: String, manifest: Manifest, jobDirectory: URL, calibrationDirectory: URL, settings: JobSettings) {
        self.name = name
        self.manifest = manifest
        self.jobDirectory = jobDirectory
        self.calibrationDirectory = calibrationDirectory
        self.settings = settings
    }

    /// Absolute path of a file reference.
    public func path(of ref: FileReference) -> String {
        switch ref {
        case .job(let n): return jobDirectory.appendingPathComponent(n).path
        case .calibration(let n): return calibrationDirectory.appendingPathComponent(n).path
        }
    }

    /// Reads a referenced file safely (O_NOFOLLOW, regular file, size limit). `field` names the manifest field in errors.
    public func read(_ ref: FileReference, field: String) throws -> Data {
        try SafeFile.read(path(of: ref), display: ref.description, field: field, maxBytes: settings.maxFileBytes)
    }

    /// Checks every file the manifest names; throws the first `file.missing` / `file.unreadable`.
    public func checkFiles() throws {
        for (field, ref) in manifest.fileReferences {
            let fd = try SafeFile.open(path(of: ref), display: ref.description, field: field, maxBytes: settings.maxFileBytes)
            close(fd)
        }
    }
}

/// What a finished job reports back to the daemon (for logs, STATUS= and metrics). The runner writes its
/// result files (`reconstruction.png`, `reconstruction.npy`, `metrics.json`, `montage.png`) itself.
public struct JobOutcome: Sendable {
    public var method: String
    public var unetEvaluations: Int
    /// PSNR in dB when the manifest gave `truth`.
    public var psnr: Double?
    public var summary: String

    public init(method: String, unetEvaluations: Int = 0, psnr: Double? = nil, summary: String = "") {
        self.method = method
        self.unetEvaluations = unetEvaluations
        self.psnr = psnr
        self.summary = summary
    }
}

/// The runner's line back to the daemon while a job runs: progress (feeds systemd `STATUS=` and the watchdog,
/// so call it at least every few seconds, e.g. per DDIM step or solver iteration) and cancellation.
public final class JobControl: @unchecked Sendable {
    let lock = NSLock()
    private var cancelled = false
    private let onProgress: @Sendable (Double, String) -> Void
    /// Where ``report(_:)`` writes the job's progress.json (set by the daemon; nil: not written, as in `dmilo reconstruct`).
    var progressPath: String?
    /// Time of the last ``report(_:)`` that went out (it sends at most one a second).
    var lastReport = 0.0

    /// The progress.json path for ``report(_:)``.
    public var progressFile: String? {
        get { lock.withLock { progressPath } }
        set { lock.withLock { progressPath = newValue } }
    }

    /// `onProgress(fraction in [0,1], note)` is called synchronously from the runner's thread.
    public init(onProgress: @escaping @Sendable (Double, String) -> Void = { _, _ in }) {
        self.onProgress = onProgress
    }

    /// Reports progress; `fraction` in [0, 1], `note` a short phrase ("outer 3/10").
    public func progress(_ fraction: Double, _ note: String = "") {
        onProgress(min(max(fraction.isFinite ? fraction : 0, 0), 1), note)
    }

    /// True once the daemon wants to stop. A runner should then throw ``JobCancelled`` soon (the job is requeued).
    public var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelled
    }

    /// Throws ``JobCancelled`` if cancellation was requested.
    public func checkCancelled() throws {
        if isCancelled { throw JobCancelled() }
    }

    public func cancel() {
        lock.lock(); cancelled = true; lock.unlock()
    }
}

/// The seam between the daemon and the reconstruction: runs one claimed job, writing its results into
/// `outputDirectory` (an empty private folder the daemon later renames to `done/NAME/`).
/// Throw ``JobError`` for bad input (the job goes to `failed/`), ``JobCancelled`` after ``JobControl/isCancelled``.
public protocol JobRunner: Sendable {
    func run(job: ClaimedJob, outputDirectory: URL, control: JobControl) throws -> JobOutcome
    /// Loads and checks what every job needs (the default model) before the daemon reports READY=1; a job worker
    /// does not call it, so it loads only what its job uses.
    func prepare() throws
}

extension JobRunner {
    public func prepare() throws {}
}
