// `dmilo`: one-shot and developer CLI. Each subcommand lives in its own file; add yours to `subcommands` below
// (one line each, so branches merge without conflicts).

import ArgumentParser
import DMiloBench
import DMiloKernels
import DMiloVersion
import Foundation

@main
struct DMiloCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmilo",
        abstract: "Diffusion-prior image reconstruction (DMILO / DMILO-PGD): one-shot and developer tools.",
        version: BuildVersion.line("dmilo"),
        subcommands: [
            EvalCommand.self,
            InspectCommand.self,
            BenchCommand.self,
            ReconstructCommand.self,
            SimulateCommand.self,
            SampleCommand.self,
            SubmitCommand.self,
            WaitCommand.self,
            StatusCommand.self,
            CancelCommand.self,
        ]
    )

    /// Entry point: re-exec with OPENBLAS_CORETYPE set when useful (see OpenBLASCoreType.swift), then parse and run.
    /// Written out instead of relying on the synthesized `main` so the async/sync overloads cannot be confused.
    static func main() async {
        OpenBLASCoreType.reexecIfNeeded(detectedCore: BLAS.coreName)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Every subcommand's bad-input error (defined beside the benchmarks, which throw it too).
typealias CLIError = DMiloBench.CLIError
