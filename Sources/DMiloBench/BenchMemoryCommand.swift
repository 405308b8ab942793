// `dmilo bench memory`: peak RSS of DMILO, DMILO-PGD and DMPlug against the number of DDIM steps N.
//
// The paper's memory claim (docs/algorithms.md §7.3): DMILO holds one step's tape whatever N, DMPlug all N. Each
// (method, N) runs as its own `dmilo reconstruct` child on one simulated job, for a few inner iterations only (the
// peak is reached within the first VJPs); peak RSS is a per-process high-water mark, hence one process each. The
// table shows the child's VmHWM when its solver has finished (`peak_rss_mb` of its metrics.json): writing the
// results afterwards adds 0–5 MiB of run-to-run noise unrelated to the solver, visible in the whole-process ru_maxrss
// (from wait4) printed below the table. With --torch, Tools/reference_dmilo.py runs the same manifest and initial
// noise and reports its own ru_maxrss after its solve.

import ArgumentParser
import DMiloFormats
import DMiloImage
import DMiloJobs
import DMiloKernels
import Foundation

struct BenchMemoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Peak RSS (MiB) of dmilo, dmilo-pgd and dmplug for N DDIM steps, each in its own child process.")

    @Option(help: "Model: diffusers folder, .safetensors or .gguf.") var model: String
    @Option(help: "Clean image the job is simulated from.") var image = "Tests/Data/fashion-mnist-test/test-00100.png"
    @Option(help: "Operator object of the job (JSON).") var `operator` = #"{"type":"super_resolution","factor":4}"#
    @Option(help: "Comma-separated DDIM step counts N.") var steps = "1,2,3,4,5,6,7,8"
    @Option(help: "Comma-separated methods.") var methods = "dmilo,dmilo-pgd,dmplug"
    /// 2: with 1, N = 1 peaked 4–5 MiB lower (its only layer is t = 999, where DDIMStep skips the UNet VJP when the x0
    /// clip saturates everywhere); from 2 on the figure no longer depends on N.
    @Option(help: "Inner iterations per layer (DMPlug: iterations); outer is 1.") var inner = 2
    /// Some runs of the same configuration peak 3–4 MiB lower (not N-dependent, cause unknown); the maximum over a few
    /// runs is the stable figure.
    @Option(help: "Runs of each configuration of ours; the table shows the maximum.") var repeats = 3
    @Option(help: "Threads of each child.") var threads = 1
    @Option(help: "Scratch folder for the job and the children's outputs, new or empty (default: a temporary folder, removed).")
    var work: String?
    @Flag(help: "Also measure Tools/reference_dmilo.py (python from $DMILO_PYTHON or a .venv-tools found upwards).")
    var torch = false

    func validate() throws {
        guard inner >= 1, threads >= 1, repeats >= 1 else { throw ValidationError("--inner, --threads and --repeats must be at least 1") }
    }

    func run() throws {
        let ns = try steps.split(separator: ",").map { s -> Int in
            guard let n = Int(s), n >= 1, n <= 1000 else { throw CLIError("--steps: \(s) is not a step count") }
            return n
        }
        guard Set(ns).count == ns.count else { throw CLIError("--steps: each N once") }
        let methodList = methods.split(separator: ",").map(String.init)
        for m in methodList where !["dmilo", "dmilo-pgd", "dmplug"].contains(m) { throw CLIError("--methods: unknown \(m)") }
        let spec = try jsonOption(self.operator, "--operator")
        let dir = try scratchFolder(work, name: "memory")
        defer { if work == nil { try? FileManager.default.removeItem(at: dir) } }
        let modelPath = URL(fileURLWithPath: model).path  // children run with our working directory; keep it absolute
        let truthShape = try PNGImage.read(from: image).modelUnits().shape
        // One initial latent for every child (ours and the reference), so all runs do the same arithmetic.
        var rng = SeededRandom(seed: 0, stream: "bench-memory")
        let noise = rng.gaussianTensor(shape: truthShape)
        let noisePath = dir.appendingPathComponent("noise.npy").path
        try NPY.write(path: noisePath, shape: noise.shape, values: UnsafeBufferPointer(start: noise.data, count: noise.count))
        let me = try ChildProcess.currentExecutable()
        let reference = torch ? try PythonTools.locate(script: "reference_dmilo.py") : nil

        var ours: [String: [Int: Double]] = [:], theirs: [String: [Int: Double]] = [:], whole: [String: [Double]] = [:]
        for method in methodList {
            for n in ns {
                let name = "\(method)-n\(n)"
                // Explicit lr_x: the squared PGD step would otherwise estimate ‖A‖ first; irrelevant to memory.
                let solver: [String: Any] = [
                    "method": method, "steps": n, "outer": 1, "inner": inner, "lr_x": 1.0,
                    "budget": 1_000_000,
                ]
                let job = try Simulation.run(
                    image: image, operatorSpec: spec, noiseSigma: 0.01, seed: 0,
                    manifest: dir.appendingPathComponent("\(name).json"), solver: solver
                ).manifest.path
                for k in 1...repeats {
                    let out = dir.appendingPathComponent("out-\(name)" + (k > 1 ? "-\(k)" : ""))
                    let r = try ChildProcess.run(
                        me,
                        [
                            "reconstruct", job, "--model", modelPath, "--out", out.path,
                            "--threads", String(threads), "--max-budget", "1000000",
                            "--initial-noise", noisePath,
                        ])
                    guard r.status == 0 else { throw CLIError("\(method) with N = \(n): dmilo reconstruct exited with status \(r.status)") }
                    let peak = try Self.reported(
                        Data(contentsOf: out.appendingPathComponent("metrics.json")),
                        what: "\(out.path)/metrics.json")
                    ours[method, default: [:]][n] = max(ours[method]?[n] ?? 0, peak)
                    whole[method, default: []].append(r.peakRSSMiB - peak)
                }
                if let reference {
                    let t = try ChildProcess.run(
                        reference.python,
                        [
                            reference.script, job, "--model", modelPath,
                            "--initial-noise", noisePath, "--threads", String(threads),
                            "--memory-probe",
                        ])
                    guard t.status == 0 else { throw CLIError("\(method) with N = \(n): \(reference.script) exited with status \(t.status)") }
                    let line = t.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }) ?? ""
                    theirs[method, default: [:]][n] = try Self.reported(Data(line.utf8), what: "\(reference.script) output")
                }
            }
        }
        let columns = methodList + (torch ? methodList.map { "torch \($0)" } : [])
        print("| N | " + columns.joined(separator: " | ") + " |")
        print("|---" + String(repeating: "|---", count: columns.count) + "|")
        for n in ns {
            let cells = methodList.map { ours[$0]![n]! } + (torch ? methodList.map { theirs[$0]![n]! } : [])
            print("| \(n) | " + cells.map { String(format: "%.1f", $0) }.joined(separator: " | ") + " |")
        }
        for (label, table) in [("", ours)] + (torch ? [("torch ", theirs)] : []) {
            let spread = methodList.map { m -> String in
                let v = ns.map { table[m]![$0]! }
                return String(format: "%@%@ %+.1f %%", label, m, 100 * (v.max()! - v.min()!) / v.min()!)
            }
            print("spread over N, (max − min)/min: " + spread.joined(separator: ", "))
        }
        print(
            "whole child process (wait4 ru_maxrss, includes writing the results) minus the table, over all runs: "
                + methodList.map { m in String(format: "%@ %.1f…%.1f", m, whole[m]!.min()!, whole[m]!.max()!) }.joined(separator: ", ") + " MiB")
        print(
            "\npeak RSS in MiB of each child process when its solver finished (VmHWM / ru_maxrss; ours: maximum of "
                + "\(repeats) runs, torch: 1 run); job: \(self.operator) on \(image), σ = 0.01, outer 1, inner \(inner), " + "\(threads) thread(s), model \(model)")
    }

    /// `peak_rss_mb` of a JSON object (our metrics.json, the reference's report line).
    static func reported(_ json: Data, what: String) throws -> Double {
        guard let o = try? JSONSerialization.jsonObject(with: json) as? [String: Any], let v = o["peak_rss_mb"] as? Double else {
            throw CLIError("no peak_rss_mb in \(what)")
        }
        return v
    }
}
