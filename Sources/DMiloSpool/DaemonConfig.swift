import DMiloJobs
import DMiloKernels
import DMiloModel
import Foundation

/// `dmilod --config FILE` (JSON). Every key is optional; unknown keys are an error. Command-line flags override it.
///
/// ```json
/// {
///   "spool": "/var/spool/dmilo",           // spool root
///   "model": "/usr/local/share/dmilo/model.gguf",  // the default model (same as models.default)
///   "models": {"default": "/usr/local/share/dmilo/model.gguf", "f32": "/srv/models/fm32"},  // by name (manifest `model`)
///   "retention": {"done_max_age_days": 7, "done_max_jobs": 10000, "failed_max_age_days": 30, "failed_max_jobs": 1000},
///   "threads": 0,                         // kernel threads per job (0 = online cores / jobs)
///   "memory_budget_mb": 1536,             // per-job memory budget (0 = 3/4 of cgroup memory.max or RAM / jobs); over it: memory.budget
///   "jobs": 2,                            // jobs run at once (default 1)
///   "max_budget": 2000,                   // cap on UNet evaluations per job (caps solver.budget)
///   "attempts": 3,                        // runs started before a crashing job goes to failed/ (job.crashed)
///   "watchdog": true,                     // ping systemd's watchdog when WATCHDOG_USEC is set
///   "metrics_file": "/var/lib/node_exporter/textfile/dmilo.prom",
///   "rescan_seconds": 5,                  // periodic rescan of incoming/ besides inotify
///   "missing_file_grace_seconds": 300,    // a manifest whose files stay missing this long fails (file.missing)
///   "max_file_mb": 256,                   // per input file
///   "max_manifest_kb": 1024,
///   "log_level": "info",                  // trace|debug|info|notice|warning|error|critical
///   "compute": "auto",                    // f32|bf16|int8|auto: precision of the UNet convolutions
///   "isolate_jobs": true,                 // run each job in its own worker process (a crash takes only that job)
///   "settle_seconds": 2,                  // an unparsable manifest younger than this is retried (written in place)
///   "stale_file_hours": 24,               // unreferenced data files in incoming/ older than this are removed
///   "solver_defaults": {"super_resolution": {"method": "dmilo-pgd", "steps": 3}, "*": {"method": "dmilo"}}
/// }
/// ```
public struct DaemonConfig: Sendable, Equatable {
    public var spool: String?
    /// Path of the default model (`model`, or `models.default`).
    public var model: String?
    /// Named models besides the default (`models` without its `default` entry); a manifest's `model` picks one.
    public var models: [String: String] = [:]
    /// Which result folders the daemon deletes (nil limits = keep everything).
    public var retention = RetentionPolicy()
    public var threads = 0
    public var memoryBudgetMB = 0
    /// 1 when no config says otherwise; the shipped Systemd/dmilod.json sets 2: two jobs side by side, one thread
    /// each on 2 cores, drained the most jobs per minute of every jobs × threads combination measured (README
    /// "Threads and jobs"; a 32×32 UNet's GEMMs are too small for two threads to share well, two jobs share nothing).
    public var jobs = 1
    public var maxBudget = 2000
    public var attempts = 3
    public var watchdog = true
    public var metricsFile: String?
    public var rescanSeconds = 5.0
    public var missingFileGraceSeconds = 300.0
    public var maxFileMB = 256
    public var maxManifestKB = 1024
    public var logLevel = "info"
    /// Precision of the UNet convolutions (`auto`: the fastest accuracy-gated one this CPU runs natively).
    public var compute: ComputeMode = .auto
    public var isolateJobs = true
    public var settleSeconds = 2.0
    public var staleFileHours = 24.0
    /// Per operator type (`*` = any other) solver defaults, in the manifest's `solver` syntax.
    public var solverDefaults: [String: SolverSettings] = [:]

    public init() {}

    public static let keys: Set<String> = [
        "spool", "model", "threads", "memory_budget_mb", "jobs", "max_budget", "attempts",
        "watchdog", "metrics_file", "rescan_seconds", "missing_file_grace_seconds",
        "max_file_mb", "max_manifest_kb", "log_level", "solver_defaults", "compute",
        "isolate_jobs", "settle_seconds", "stale_file_hours", "models", "retention",
    ]
    static let logLevels: Set<String> = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Reads and validates a config file; errors name the file and key.
    public static func load(path: String) throws -> DaemonConfig {
        try parse(read(path: path), file: path)
    }

    /// The config file's bytes (at most 1 MiB, never through a symlink).
    public static func read(path: String) throws -> Data {
        do { return try SafeFile.read(path, display: path, field: nil, maxBytes: 1 << 20) } catch let e as JobError {
            throw SpoolError("config \(e.message)")
        }
    }

    public static func parse(_ data: Data, file: String) throws -> DaemonConfig {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch {
            throw SpoolError("config \(file) is not valid JSON: \(error)")  // names the line and column
        }
        guard let o = root.objectValue else { throw SpoolError("config \(file) is not a JSON object") }
        for k in o.keys.sorted() where !keys.contains(k) {
            throw SpoolError("config \(file): unknown key `\(k)` (allowed: \(keys.sorted().joined(separator: ", ")))")
        }
        var c = DaemonConfig()
        func string(_ k: String) throws -> String? {
            guard let v = o[k] else { return nil }
            guard let s = v.stringValue, !s.isEmpty else { throw SpoolError("config \(file): `\(k)` must be a non-empty string") }
            return s
        }
        func int(_ k: String, min: Int) throws -> Int? {
            guard let v = o[k] else { return nil }
            guard let i = v.intValue, i >= min else { throw SpoolError("config \(file): `\(k)` must be an integer >= \(min)") }
            return i
        }
        func real(_ k: String) throws -> Double? {
            guard let v = o[k] else { return nil }
            guard let d = v.doubleValue, d > 0 else { throw SpoolError("config \(file): `\(k)` must be a positive number") }
            return d
        }
        c.spool = try string("spool")
        c.model = try string("model")
        if let v = o["models"] {
            let named = try parseModels(v, file: file)
            if let d = named["default"] {
                if c.model != nil {
                    throw SpoolError("config \(file): `model` and `models.default` both name the default model; give it once")
                }
                c.model = d
            } else if c.model == nil {
                throw SpoolError("config \(file): `models` needs a `default` entry (or give `model`)")
            }
            c.models = named.filter { $0.key != "default" }
        }
        if let v = o["retention"] { c.retention = try RetentionPolicy.parse(v, file: file) }
        c.metricsFile = try string("metrics_file")
        if let v = try int("threads", min: 0) { c.threads = v }
        if let v = try int("memory_budget_mb", min: 0) { c.memoryBudgetMB = v }
        if let v = try int("jobs", min: 1) { c.jobs = v }
        if let v = try int("max_budget", min: 1) { c.maxBudget = v }
        if let v = try int("attempts", min: 1) { c.attempts = v }
        if let v = try int("max_file_mb", min: 1) { c.maxFileMB = v }
        if let v = try int("max_manifest_kb", min: 1) { c.maxManifestKB = v }
        if let v = try real("rescan_seconds") { c.rescanSeconds = v }
        if let v = try real("missing_file_grace_seconds") { c.missingFileGraceSeconds = v }
        if let v = o["watchdog"] {
            guard case .bool(let b) = v else { throw SpoolError("config \(file): `watchdog` must be true or false") }
            c.watchdog = b
        }
        if let v = o["isolate_jobs"] {
            guard case .bool(let b) = v else { throw SpoolError("config \(file): `isolate_jobs` must be true or false") }
            c.isolateJobs = b
        }
        if let v = try real("settle_seconds") { c.settleSeconds = v }
        if let v = try real("stale_file_hours") { c.staleFileHours = v }
        if let v = try string("log_level") {
            guard logLevels.contains(v) else { throw SpoolError("config \(file): `log_level` must be one of \(logLevels.sorted())") }
            c.logLevel = v
        }
        if let v = try string("compute") {
            do { c.compute = try ComputeMode.parse(v, field: "`compute`") } catch let e as ModelError {
                throw SpoolError("config \(file): \(e.message)")
            }
        }
        if let v = o["solver_defaults"] {
            guard let d = v.objectValue else { throw SpoolError("config \(file): `solver_defaults` must be an object") }
            for (type, s) in d {
                guard type == "*" || Manifest.operatorTypes.contains(type) else {
                    throw SpoolError("config \(file): `solver_defaults.\(type)`: unknown operator type")
                }
                do { c.solverDefaults[type] = try SolverSettings.parse(s, path: "solver_defaults.\(type)", file: file) } catch let e as JobError {
                    throw SpoolError("config \(e.message)")
                }
            }
        }
        return c
    }

    static func parseModels(_ v: JSONValue, file: String) throws -> [String: String] {
        guard let o = v.objectValue, !o.isEmpty else {
            throw SpoolError("config \(file): `models` must be a non-empty object {NAME: PATH}")
        }
        var out: [String: String] = [:]
        for (name, path) in o {
            guard ModelRegistry.isValidName(name) else {
                throw SpoolError("config \(file): `models`: name `\(name)` is not [A-Za-z0-9._-]{1,64}")
            }
            guard let p = path.stringValue, !p.isEmpty else {
                throw SpoolError("config \(file): `models.\(name)` must be a non-empty string (a model path)")
            }
            out[name] = p
        }
        return out
    }

    /// Every configured model by name, the default as `default` (empty when no model is configured).
    public var modelPaths: [String: String] {
        var all = models
        if let m = model { all["default"] = m }
        return all
    }

    /// The path of the model a manifest's `model` names (nil name = `default`); nil when not configured.
    public func modelPath(named name: String?) -> String? { modelPaths[name ?? "default"] }

    /// Kernel threads each job gets: `threads`, or for 0 the online cores shared by the `jobs` running at once.
    public var threadsPerJob: Int { threads > 0 ? threads : Threading.automaticThreads(jobs: jobs) }

    /// Settings for one job: config defaults for its operator type, overridden by the manifest. The budget is capped
    /// at `maxBudget` once, where the settings become solver parameters (`SolverSettings.parameters`).
    public func jobSettings(for manifest: Manifest) -> JobSettings {
        var solver = (solverDefaults["*"] ?? SolverSettings()).overridden(by: solverDefaults[manifest.operatorType] ?? SolverSettings())
        if let m = manifest.solver { solver = solver.overridden(by: m) }
        // 0 = derived from the machine (cgroup memory.max or RAM, shared by the concurrent jobs), never unlimited.
        let budget = memoryBudgetMB > 0 ? memoryBudgetMB : MachineMemory.defaultJobBudgetMB(jobs: jobs)
        return JobSettings(
            solver: solver, maxBudget: maxBudget, threads: threadsPerJob, memoryBudgetMB: budget,
            maxFileBytes: maxFileMB << 20)
    }
}
