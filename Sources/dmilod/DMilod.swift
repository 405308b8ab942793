import ArgumentParser
import DMiloJobs
import DMiloKernels
import DMiloSpool
import DMiloVersion
import Foundation

/// `dmilod`: the spool daemon (docs/INTERFACE.md "dmilod"). `@main` lives in a file not named main.swift so the
/// async entry point is used (docs/platform.md §6). The options are ``DaemonOptions`` (shared with the test-only
/// `dmilod-test`, which adds `--test-runner`).
@main
struct DMilod: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmilod",
        abstract: "Reconstruct images from sensor measurements dropped into a spool folder.",
        discussion:
            "Signals: SIGTERM/SIGINT stop gracefully (a running job finishes or goes back to incoming/), SIGHUP reloads the config. Each job runs in its own worker process (config isolate_jobs).",
        version: BuildVersion.line("dmilod"))

    @OptionGroup var options: DaemonOptions

    func run() async throws {
        // Before anything else: OpenBLAS chooses its kernels at load time (see OpenBLASCoreType). The unit file sets
        // OPENBLAS_CORETYPE; a dmilod started by hand re-executes itself with it, like `dmilo`.
        OpenBLASCoreType.reexecIfNeeded(detectedCore: BLAS.coreName)
        let code = await options.run(loader: productRunnerLoader)
        if code != 0 { throw ExitCode(code) }
    }
}
