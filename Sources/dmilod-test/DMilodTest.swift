import ArgumentParser
import DMiloSpool
import Foundation

/// `dmilod-test`: `dmilod` with the built-in `--test-runner` instead of the model, for the daemon's end-to-end
/// tests. Built by `swift build` / `swift test` beside `dmilod` but never a product and never installed, so the
/// test hook is not part of the release binaries.
@main
struct DMilodTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmilod-test",
        abstract: "dmilod with a model-free test runner (tests only).")

    @OptionGroup var options: DaemonOptions

    @Option(name: .customLong("test-runner"), help: "sleep:MS | crash:MS | stall:MS | abort:MS | nan:MS | diskfull:MS runner without a model.")
    var testRunner: String

    func validate() throws {
        if DeveloperRunner(spec: testRunner) == nil {
            throw ValidationError("--test-runner must be sleep:MS, crash:MS, stall:MS, abort:MS, nan:MS or diskfull:MS")
        }
    }

    func run() async throws {
        guard let dev = DeveloperRunner(spec: testRunner) else { throw ExitCode(2) }
        let code = await options.run(loader: { _ in dev })
        if code != 0 { throw ExitCode(code) }
    }
}
