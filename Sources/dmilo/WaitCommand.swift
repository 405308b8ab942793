// `dmilo wait`: block until a job's result folder appears.

import ArgumentParser
import DMiloSpool

struct WaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait until done/NAME or failed/NAME exists and print that folder.",
        discussion: "Exit 0: done; 1: failed; 2: timed out (nothing printed).")

    @OptionGroup var job: SpoolJobArguments
    @Option(help: "Give up after this many seconds (default: wait for ever).") var timeout: Double?

    func validate() throws {
        if let t = timeout, !(t >= 0) { throw ValidationError("--timeout must be a number of seconds ≥ 0") }
    }

    func run() throws {
        let result: SpoolClient.WaitResult
        do { result = try SpoolClient(root: job.spool).wait(for: job.name, timeout: timeout) } catch let e as SpoolClient.Refusal {
            throw CLIError(e.description)
        }
        switch result {
        case .done(let path): print(path)
        case .failed(let path): print(path); throw ExitCode(1)
        case .timedOut: throw ExitCode(2)
        }
    }
}
