import ArgumentParser
import DMiloJobs
import Foundation

/// `dmilod`'s command line, shared by the product (`dmilod`, which links the model runner) and the test-only
/// `dmilod-test` (which adds `--test-runner` and is never installed), so the test hook is not in release binaries.
public struct DaemonOptions: ParsableArguments {
    public init() {}

    @Option(
        help:
            "JSON config file (keys: spool, model, threads, memory_budget_mb, jobs, max_budget, attempts, watchdog, metrics_file, rescan_seconds, missing_file_grace_seconds, max_file_mb, max_manifest_kb, log_level, solver_defaults, compute, isolate_jobs, settle_seconds, stale_file_hours, models, retention)."
    )
    public var config: String?

    @Option(help: "Spool root (incoming/ work/ done/ failed/ tmp/ calibration/).")
    public var spool: String?

    @Option(help: "Model: GGUF file, diffusers folder or converted ADM folder (Tools/convert_adm.py).")
    public var model: String?

    @Flag(help: "Process what is in incoming/ and work/, then exit (0, or 1 when any job failed).")
    public var once = false

    @Option(help: "Kernel threads per job (0 = online cores / jobs).")
    public var threads: Int?

    @Option(name: .customLong("memory-budget"), help: "Per-job memory budget in MiB (0 = 3/4 of cgroup memory.max or RAM, divided by --jobs).")
    public var memoryBudget: Int?

    @Option(help: "Jobs run at once.")
    public var jobs: Int?

    /// Internal: the daemon starts itself with these to run one job in a worker process (IsolatedRunner).
    @Option(name: .customLong("job-worker"), help: ArgumentHelp("Internal: run the job in this work/ folder and exit.", visibility: .private))
    public var jobWorker: String?
    @Option(name: .customLong("job-output"), help: ArgumentHelp("Internal: output folder of --job-worker.", visibility: .private))
    public var jobOutput: String?
    @Option(name: .customLong("job-manifest"), help: ArgumentHelp("Internal: manifest file of --job-worker.", visibility: .private))
    public var jobManifest: String?

    public func validate() throws {
        if let t = threads, t < 0 { throw ValidationError("--threads must be >= 0") }
        if let m = memoryBudget, m < 0 { throw ValidationError("--memory-budget must be >= 0") }
        if let j = jobs, j < 1 { throw ValidationError("--jobs must be >= 1") }
        if (jobWorker == nil) != (jobOutput == nil) || (jobWorker == nil) != (jobManifest == nil) {
            throw ValidationError("--job-worker, --job-output and --job-manifest go together")
        }
    }

    /// Runs the daemon (or, with `--job-worker`, one job) with `loader`; returns the exit code.
    public func run(loader: @escaping RunnerLoader) async -> Int32 {
        let overrides = DaemonMain.Overrides(spool: spool, model: model, threads: threads, memoryBudgetMB: memoryBudget, jobs: jobs)
        if let dir = jobWorker, let out = jobOutput, let manifest = jobManifest {
            return JobWorker.run(
                configPath: config, overrides: overrides, loader: loader,
                jobDirectory: dir, outputDirectory: out, manifestFile: manifest)
        }
        return await DaemonMain.run(configPath: config, overrides: overrides, once: once, loader: loader)
    }
}
