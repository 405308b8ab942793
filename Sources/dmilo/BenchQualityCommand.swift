// `dmilo bench quality`: reconstruction quality of every method on every task over held-out test images.
//
// Honest figures are the LAST iterate (what dmilod returns). The paper's protocol — best PSNR over iterations against
// the truth — is printed beside it, labelled "oracle", and exists only here.

import ArgumentParser
import DMiloImage
import DMiloJobs
import DMiloKernels
import DMiloModel
import DMiloOperators
import DMiloSolvers
import Foundation

struct BenchQualityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quality",
        abstract: "PSNR/SSIM (last iterate and oracle), UNet evaluations, wall time per task × method on test images.")

    @Option(help: "Model: diffusers folder, .safetensors or .gguf.") var model: String
    @Option(help: "Folder of clean test PNGs (default: Tests/Data/fashion-mnist-test).") var images = "Tests/Data/fashion-mnist-test"
    @Option(help: "Number of images (the first N files in name order).") var count = 20
    @Option(help: "Comma-separated tasks (default: all): \(BenchTasks.all.map(\.name).joined(separator: ","))") var tasks: String?
    @Option(help: "Comma-separated methods (default: dmilo-pgd,dmilo,dmplug,dps,baseline).") var methods = "dmilo-pgd,dmilo,dmplug,dps,baseline"
    @Option(name: .customLong("noise-sigma"), help: "Measurement noise std (model units).") var noiseSigma = 0.01
    @Option(help: "UNet-evaluation budget per job.") var budget = 2000
    @Option(help: "Solver overrides as JSON, e.g. '{\"inner\":50,\"outer\":4}' (applied to every method).") var overrides: String?
    @Flag(help: "Stop by the discrepancy principle (ground-truth free) instead of running the full iteration count.")
    var discrepancy = false
    @Option(help: "τ of the discrepancy principle.") var tau = 1.0
    @Option(help: "Folder for one montage PNG per task (first image, all methods).") var montages: String?
    @Option(help: "Threads.") var threads: Int?

    func run() throws {
        if let threads { Threading.count = threads }
        let loaded = try LoadedModel.open(path: model)
        let net = try loaded.checkOut()
        let files = try FileManager.default.contentsOfDirectory(atPath: images).filter { $0.hasSuffix(".png") }.sorted().prefix(count)
        guard !files.isEmpty else { throw CLIError("\(images): no PNG files") }
        let truths = try files.map { try PNGImage.read(from: (images as NSString).appendingPathComponent($0)).modelUnits() }
        let taskList = try BenchTasks.select(tasks)
        let methodList = try methods.split(separator: ",").map { name -> SolverMethod in
            guard let m = SolverMethod(rawValue: String(name)) else { throw CLIError("unknown method \(name)") }
            return m
        }
        let extra = try overrides.map { text -> [String: Any] in
            guard let o = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { throw CLIError("--overrides: not a JSON object") }
            return o
        } ?? [:]
        print("| task | method | PSNR last | SSIM last | PSNR oracle | SSIM oracle | UNet evals | s/image | peak RSS MB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for task in taskList {
            var panels: [Tensor] = []
            var labels: [String] = []
            for method in methodList {
                var psnr: [Double] = [], ssim: [Double] = [], opsnr: [Double] = [], ossim: [Double] = []
                var evals: [Double] = [], secs: [Double] = []
                for (k, truth) in truths.enumerated() {
                    let op = try OperatorFactory.make(spec: task.spec, imageShape: truth.shape) { _, f in throw CLIError("\(f): no files in bench") }
                    let y = op.apply(truth)
                    var rng = SeededRandom(seed: UInt64(k), stream: "measurement-noise")
                    for i in 0..<y.count { y[i] += Float(rng.gaussian() * noiseSigma) }
                    var p = SolverDefaults.parameters(method: method, operatorType: op.name)
                    try BenchTasks.apply(extra, to: &p)
                    p.budget = budget
                    p.seed = UInt64(k)
                    if discrepancy { p.discrepancyTau = tau }
                    let problem = InverseProblem(model: net, schedule: loaded.schedule, op: op, y: y, noiseSigma: noiseSigma)
                    var best = (-Double.infinity, 0.0)
                    let t0 = Date()
                    let res = try Solvers.run(p, problem: problem, makeReplica: { try loaded.replica() }, observer: { x, _ in
                        if let v = try? Metrics.psnr(truth: truth, estimate: x), v > best.0 {
                            best = (v, (try? Metrics.ssim(truth: truth, estimate: x)) ?? 0)
                        }
                    })
                    secs.append(Date().timeIntervalSince(t0))
                    let v = try Metrics.psnr(truth: truth, estimate: res.x), s = try Metrics.ssim(truth: truth, estimate: res.x)
                    psnr.append(v); ssim.append(s)
                    opsnr.append(max(best.0, v)); ossim.append(best.0 >= v ? best.1 : s)
                    evals.append(Double(res.unetEvaluations))
                    if k == 0 {
                        if panels.isEmpty { panels.append(ReconstructionRunner.displayable(y, op: op)); labels.append("measurement") }
                        panels.append(res.x); labels.append(method.rawValue)
                    }
                }
                let f = { (a: [Double], d: Int) in String(format: "%.\(d)f ± %.\(d)f", mean(a), std(a)) }
                print("| \(task.name) | \(method.rawValue) | \(f(psnr, 2)) | \(f(ssim, 3)) | \(f(opsnr, 2)) | \(f(ossim, 3)) | \(Int(mean(evals))) | \(String(format: "%.2f", mean(secs))) | \(String(format: "%.0f", peakRSSMegabytes() ?? 0)) |")
                fflush(nil)
            }
            if let montages, let first = truths.first {
                try FileManager.default.createDirectory(atPath: montages, withIntermediateDirectories: true)
                let pic = try Montage.make(panels: panels + [first], labels: labels + ["truth"], scale: 4)
                try ResultFiles.writeFile(Data(try pic.encoded()), URL(fileURLWithPath: montages).appendingPathComponent("\(task.name).png"))
            }
        }
        print("\n\(truths.count) images (\(files.first!) …), σ = \(noiseSigma), budget \(budget) UNet evaluations per job; " +
              "last = the iterate dmilod returns; oracle = best PSNR over outer iterations against the truth (paper protocol).")
    }
}

func mean(_ a: [Double]) -> Double { a.isEmpty ? 0 : a.reduce(0, +) / Double(a.count) }
func std(_ a: [Double]) -> Double {
    guard a.count > 1 else { return 0 }
    let m = mean(a)
    return (a.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(a.count - 1)).squareRoot()
}

/// The benchmark's tasks (operator objects as in a manifest), sized for 32×32 images.
enum BenchTasks {
    struct Task { let name: String; let spec: [String: Any] }
    nonisolated(unsafe) static let all: [Task] = [
        Task(name: "sr2-box", spec: ["type": "super_resolution", "factor": 2, "kernel": "box"]),
        Task(name: "sr2-bicubic", spec: ["type": "super_resolution", "factor": 2, "kernel": "bicubic"]),
        Task(name: "sr4", spec: ["type": "super_resolution", "factor": 4, "kernel": "bicubic"]),
        Task(name: "inpainting70", spec: ["type": "inpainting", "missing_fraction": 0.7, "mask_seed": 1]),
        Task(name: "gaussian-blur", spec: ["type": "gaussian_blur", "size": 9, "sigma": 1.5]),
        Task(name: "cs25", spec: ["type": "compressed_sensing", "ratio": 0.25, "matrix_seed": 1]),
        Task(name: "hdr", spec: ["type": "hdr", "gain": 2.0]),
    ]

    static func select(_ list: String?) throws -> [Task] {
        guard let list else { return all }
        return try list.split(separator: ",").map { n in
            guard let t = all.first(where: { $0.name == n }) else { throw CLIError("unknown task \(n)") }
            return t
        }
    }

    static func apply(_ o: [String: Any], to p: inout SolverParameters) throws {
        for (k, v) in o {
            guard let d = (v as? NSNumber)?.doubleValue else { throw CLIError("--overrides: \(k) must be a number") }
            switch k {
            case "steps": p.steps = Int(d)
            case "outer": p.outer = Int(d)
            case "inner": p.inner = Int(d)
            case "lr_z": p.lrZ = d
            case "lr_nu": p.lrNu = d
            case "lr_x": p.lrX = d
            case "lambda": p.lambda = d
            case "z_prior": p.zPrior = d
            case "pgd_steps": p.pgdSteps = Int(d)
            case "dps_steps": p.dpsSteps = Int(d)
            case "dps_zeta": p.dpsZeta = d
            case "baseline_mu": p.baselineMu = d
            case "layer_span": p.layerSpan = Int(d)
            default: throw CLIError("--overrides: unknown key \(k)")
            }
        }
    }
}
