// `dmilo reconstruct JOB.json --model MODEL --out DIR`: one job exactly as the daemon runs it (same runner, same outputs).

import ArgumentParser
import DMiloBench
import DMiloFormats
import DMiloJobs
import DMiloKernels
import DMiloModel
import Foundation

struct ReconstructCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct",
        abstract: "Run one job manifest exactly as dmilod would; results go to --out.")

    @Argument(help: "Job manifest (NAME.json); the files it names are resolved beside it (calibration/FILE: ./calibration).")
    var job: String
    @Option(help: "Model: diffusers or converted ADM folder, .safetensors or .gguf.") var model: String
    @Option(help: "Output folder (created; must be empty if it exists).") var out: String
    @Option(help: "Cap on UNet evaluations (like the daemon's max_budget).") var maxBudget: Int = 2000
    @Option(help: "Memory budget in MB (0 = unlimited); refused with memory.budget when the plan does not fit.")
    var memoryBudget: Int = 0
    @Option(help: "Threads for BLAS and parallel loops (default: all cores).") var threads: Int?
    @Option(help: computeHelp) var compute: ComputeMode = .auto
    @Option(
        name: .customLong("initial-noise"),
        help: "Initial latent .npy (float32, the image's shape) instead of the seeded draw, to compare with Tools/reference_dmilo.py fed the same file.")
    var initialNoise: String?
    @Flag(help: "Print metrics.json on stdout (on failure: error.json's object, exit 1); progress stays on stderr.")
    var json = false

    func run() throws {
        if let threads { Threading.count = threads }
        let outURL = URL(fileURLWithPath: out)
        if let items = try? FileManager.default.contentsOfDirectory(atPath: out), !items.isEmpty {
            throw CLIError("\(out): exists and is not empty")
        }
        try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
        let loaded = try LoadedModel.open(path: model, compute: compute) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let claimed: ClaimedJob
        do {
            claimed = try ClaimedJob.load(manifestPath: job) { manifest in
                JobSettings(
                    solver: manifest.solver ?? SolverSettings(), maxBudget: maxBudget, threads: threads ?? 0,
                    memoryBudgetMB: memoryBudget)
            }
        } catch let e as CodedError {
            let file = URL(fileURLWithPath: job).lastPathComponent
            try fail(e, job: file.hasSuffix(".json") ? String(file.dropLast(5)) : file, out: outURL)
        }
        let tty = isatty(STDERR_FILENO) == 1
        let control = JobControl { fraction, note in
            if tty { FileHandle.standardError.write(Data(String(format: "\r%3.0f%% %@\u{1B}[K", fraction * 100, note).utf8)) }
        }
        do {
            var runner = ReconstructionRunner(model: loaded)
            if let initialNoise {
                let noise = try NPY.read(path: initialNoise)
                guard noise.values.count == loaded.sampleShape.reduce(1, *) else {
                    throw CLIError("--initial-noise: \(initialNoise) has shape \(noise.shape), the model's images are \(loaded.sampleShape)")
                }
                runner.initialNoise = noise.values
            }
            let outcome = try runner.run(job: claimed, outputDirectory: outURL, control: control)
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            if json {
                // The file the job wrote, byte for byte: --json and metrics.json cannot disagree.
                FileHandle.standardOutput.write(try Data(contentsOf: outURL.appendingPathComponent("metrics.json")))
                return
            }
            print(outcome.summary)
            print("results in \(outURL.path)")
        } catch let e as CodedError {
            try fail(e, job: claimed.name, out: outURL)
        }
    }

    /// Writes error.json (as the daemon's failed/NAME/error.json), with --json also to stdout, and fails.
    func fail(_ e: any CodedError, job name: String, out: URL) throws -> Never {
        let doc: [String: Any] = ["job": name, "error": e.code, "message": e.message, "field": e.field ?? NSNull()]
        let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: out.appendingPathComponent("error.json"))
        if json { FileHandle.standardOutput.write(data + Data("\n".utf8)) }
        throw CLIError("\(e.code): \(e.message)")
    }
}
