import ArgumentParser
import DMiloJobs
import DMiloKernels
import DMiloSpool
import DMiloVersion
import Foundation

/// `dmilod`: the spool daemon (docs/INTERFACE.md "dmilod"). `@main` lives in a file not named main.swift so the
/// async entry point is used (docs/platform.md §6).
@main
struct DMilod: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmilod",
        abstract: "Reconstruct images from sensor measurements dropped into a spool folder.",
        discussion: "Signals: SIGTERM/SIGINT stop gracefully (a running job finishes or goes back to incoming/), SIGHUP reloads the config.",
        version: BuildVersion.line("dmilod"))

    @Option(help: "JSON config file (keys: spool, model, threads, memory_budget_mb, jobs, max_budget, attempts, watchdog, metrics_file, rescan_seconds, missing_file_grace_seconds, max_file_mb, max_manifest_kb, log_level, solver_defaults).")
    var config: String?

    @Option(help: "Spool root (incoming/ work/ done/ failed/ tmp/ calibration/).")
    var spool: String?

    @Option(help: "Model: GGUF file, diffusers folder or converted ADM folder (Tools/convert_adm.py).")
    var model: String?

    @Flag(help: "Process what is in incoming/ and work/, then exit 0.")
    var once = false

    @Option(help: "Kernel threads per job (0 = online cores / jobs).")
    var threads: Int?

    @Option(name: .customLong("memory-budget"), help: "Per-job memory budget in MiB (0 = none).")
    var memoryBudget: Int?

    @Option(help: "Jobs run at once.")
    var jobs: Int?

    /// Test-only: `sleep:MS`, `crash:MS`, `stall:MS` built-in runners that need no model (see DeveloperRunner).
    @Option(name: .customLong("test-runner"), help: ArgumentHelp("Test only: sleep:MS | crash:MS | stall:MS runner without a model.", visibility: .hidden))
    var testRunner: String?

    func validate() throws {
        if let t = threads, t < 0 { throw ValidationError("--threads must be >= 0") }
        if let m = memoryBudget, m < 0 { throw ValidationError("--memory-budget must be >= 0") }
        if let j = jobs, j < 1 { throw ValidationError("--jobs must be >= 1") }
        if let spec = testRunner, DeveloperRunner(spec: spec) == nil { throw ValidationError("--test-runner must be sleep:MS, crash:MS or stall:MS") }
    }

    func run() async throws {
        // Before anything else: OpenBLAS chooses its kernels at load time (see OpenBLASCoreType). The unit file sets
        // OPENBLAS_CORETYPE; a dmilod started by hand re-executes itself with it, like `dmilo`.
        OpenBLASCoreType.reexecIfNeeded(detectedCore: BLAS.coreName)
        let loader: RunnerLoader
        if let spec = testRunner, let dev = DeveloperRunner(spec: spec) {
            loader = { _ in dev }
        } else {
            loader = productRunnerLoader
        }
        let overrides = DaemonMain.Overrides(spool: spool, model: model, threads: threads, memoryBudgetMB: memoryBudget, jobs: jobs)
        let code = await DaemonMain.run(configPath: config, overrides: overrides, once: once, loader: loader)
        if code != 0 { throw ExitCode(code) }
    }
}
