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

    @Option(help: "Model: diffusers folder, .safetensors or .gguf (required unless --merge).") var model: String?
    @Option(help: "Folder of clean test PNGs (default: Tests/Data/fashion-mnist-test).") var images = "Tests/Data/fashion-mnist-test"
    @Option(help: "Number of images (the first N files in name order).") var count = 20
    @Option(help: "Comma-separated tasks (default: all): \(BenchTasks.all.map(\.name).joined(separator: ","))") var tasks: String?
    @Option(help: "Comma-separated methods (default: dmilo-pgd,dmilo,dmplug,dps,baseline).") var methods = "dmilo-pgd,dmilo,dmplug,dps,baseline"
    @Option(name: .customLong("noise-sigma"), help: "Measurement noise std (model units).") var noiseSigma = 0.01
    @Option(help: "UNet-evaluation budget per job.") var budget = 2000
    @Option(help: "Solver overrides as JSON, e.g. '{\"inner\":50,\"outer\":4}' (applied to every method): a manifest's solver keys plus z_prior, pgd_steps, dps_zeta, baseline_mu, layer_span.")
    var overrides: String?
    @Flag(help: "Stop by the discrepancy principle (ground-truth free) instead of running the full iteration count.")
    var discrepancy = false
    @Option(help: "τ of the discrepancy principle.") var tau = 1.0
    @Option(help: "Folder for one montage PNG per task (first image, all methods).") var montages: String?
    @Option(help: "Threads.") var threads: Int?
    @Option(help: computeHelp) var compute: ComputeMode = .auto
    @Flag(help: "Print every observed iterate (UNet evaluations, PSNR, relative residual) per image, for tuning.")
    var trace = false

    @Option(help: "Skip this many images (in name order) before taking --count: shards a long run.") var first = 0
    @Option(help: "Also append one JSON record per job to this file (shards are merged with --merge).") var records: String?
    @Option(parsing: .upToNextOption, help: "Print the table of these record files instead of running anything.")
    var merge: [String] = []

    func run() throws {
        if !merge.isEmpty {
            let all = try merge.flatMap { try QualityRecord.read(path: $0) }
            print(QualityRecord.table(all))
            print("\n\(Set(all.map(\.image)).count) images, \(all.count) jobs from \(merge.count) record files.")
            return
        }
        let (loaded, net, files) = try openPerImageBench(
            model: model, compute: compute, threads: threads, images: images, first: first, count: count)
        let truths = try files.map { try PNGImage.read(from: (images as NSString).appendingPathComponent($0)).modelUnits() }
        let taskList = try BenchTasks.select(tasks)
        let methodList = try methods.split(separator: ",").map { name -> SolverMethod in
            guard let m = SolverMethod(rawValue: String(name)) else { throw CLIError("unknown method \(name)") }
            return m
        }
        // The manifest's `solver` keys plus the tuning knobs, read and mapped to parameters exactly as a job's are.
        let extra =
            try overrides.map { text -> SolverSettings in
                do {
                    return try SolverSettings.parse(
                        JSONValue.parse(Data(text.utf8)), path: "overrides", file: "--overrides",
                        allowed: SolverSettings.tuningKeys)
                } catch { throw CLIError("--overrides: \(error)") }
            } ?? SolverSettings()
        // O_APPEND: shards running at once may share one record file; each record is one write of one line.
        let sink = try records.map { path -> FileHandle in
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw CLIError("\(path): cannot open for appending (errno \(errno))") }
            return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        }
        print(QualityRecord.header)
        var all: [QualityRecord] = []
        for task in taskList {
            var panels: [Tensor] = []
            var labels: [String] = []
            for method in methodList {
                var rows: [QualityRecord] = []
                for (k, truth) in truths.enumerated() {
                    let image = first + k  // the image's index in the folder: its noise and solver seeds
                    let op = try OperatorFactory.make(spec: task.spec, imageShape: truth.shape) { _, f in throw CLIError("\(f): no files in bench") }
                    let y = op.apply(truth)
                    let noiseSigma = task.noiseSigma ?? noiseSigma
                    var rng = SeededRandom(seed: UInt64(image), stream: "measurement-noise")
                    for i in 0..<y.count { y[i] += Float(rng.gaussian() * noiseSigma) }
                    var settings = extra
                    settings.method = method.rawValue
                    if discrepancy { settings.discrepancyTau = tau }
                    let p = try settings.parameters(operatorType: op.name, maxBudget: budget, seed: UInt64(image))
                    let problem = InverseProblem(model: net, schedule: loaded.schedule, op: op, y: y, noiseSigma: noiseSigma)
                    var best = (-Double.infinity, 0.0)
                    var path: [String] = []
                    var seen: [Tensor] = []
                    let t0 = Date()
                    let res = try Solvers.run(
                        p, problem: problem, makeReplica: { try loaded.replica() },
                        observer: { x, n in
                            guard let v = try? Metrics.psnr(truth: truth, estimate: x) else { return }
                            if v > best.0 { best = (v, (try? Metrics.ssim(truth: truth, estimate: x)) ?? 0) }
                            guard trace else { return }
                            // relative change against the iterate one and two observations back (DMILO-PGD reports
                            // two per outer iteration: after the data step and after the projection)
                            let change = [1, 2].map { back -> String in
                                guard seen.count >= back else { return "-" }
                                let d = x.copy(); d.axpy(-1, seen[seen.count - back])
                                return String(format: "%.4f", d.norm / max(x.norm, 1e-12))
                            }
                            seen.append(x.copy())
                            path.append(String(format: "%d:%.2f/%.3f/", n, v, problem.relativeResidual(x)) + change.joined(separator: ","))
                        })
                    if trace { print("trace \(task.name) \(method.rawValue) image \(image): \(path.joined(separator: " "))") }
                    let secs = Date().timeIntervalSince(t0)
                    let v = try Metrics.psnr(truth: truth, estimate: res.x), s = try Metrics.ssim(truth: truth, estimate: res.x)
                    let r = QualityRecord(
                        task: task.name, method: method.rawValue, image: image, psnr: v, ssim: s,
                        oraclePSNR: max(best.0, v), oracleSSIM: best.0 >= v ? best.1 : s,
                        evaluations: res.unetEvaluations, seconds: secs, stoppedBy: res.stoppedBy.rawValue,
                        peakRSSMB: peakRSSMegabytes() ?? 0)
                    rows.append(r)
                    if let sink { sink.write(try r.jsonLine()) }
                    if k == 0 {
                        if panels.isEmpty { panels.append(ReconstructionRunner.displayable(y, op: op)); labels.append("measurement") }
                        panels.append(res.x); labels.append(method.rawValue)
                    }
                }
                print(QualityRecord.row(rows))
                all += rows
                fflush(nil)
            }
            if let montages, let firstTruth = truths.first {
                try FileManager.default.createDirectory(atPath: montages, withIntermediateDirectories: true)
                let pic = try Montage.make(panels: panels + [firstTruth], labels: labels + ["truth"], scale: 4)
                try ResultFiles.writeFile(Data(try pic.encoded()), URL(fileURLWithPath: montages).appendingPathComponent("\(task.name).png"))
            }
        }
        try sink?.close()
        print(
            "\n\(truths.count) images (\(files.first!) …), σ = \(noiseSigma) (rows named -s05: 0.05), budget \(budget) UNet evaluations per job; "
                + "last = the iterate dmilod returns; oracle = best PSNR over outer iterations against the truth (paper protocol).")
    }
}

/// One benchmark job's outcome; a run's records (JSON lines) can be merged across shards into one table.
struct QualityRecord: JSONLinesRecord {
    static let recordKind = "a quality record"
    var task: String
    var method: String
    var image: Int
    var psnr: Double
    var ssim: Double
    var oraclePSNR: Double
    var oracleSSIM: Double
    var evaluations: Int
    var seconds: Double
    var stoppedBy: String
    var peakRSSMB: Double

    static let header = "| task | method | images | PSNR last | SSIM last | PSNR oracle | SSIM oracle | UNet evals | s/image | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|"

    /// One table row: mean ± std over the images of one task × method.
    static func row(_ rows: [QualityRecord]) -> String {
        let f = { (a: [Double], d: Int) in String(format: "%.\(d)f ± %.\(d)f", mean(a), std(a)) }
        let r0 = rows[0]
        return "| \(r0.task) | \(r0.method) | \(rows.count) | \(f(rows.map(\.psnr), 2)) | \(f(rows.map(\.ssim), 3)) | \(f(rows.map(\.oraclePSNR), 2)) | "
            + "\(f(rows.map(\.oracleSSIM), 3)) | \(Int(mean(rows.map { Double($0.evaluations) }))) | "
            + "\(String(format: "%.2f", mean(rows.map(\.seconds)))) | \(String(format: "%.0f", rows.map(\.peakRSSMB).max() ?? 0)) |"
    }

    /// Rows in benchmark order (tasks as in `BenchTasks.all`, methods as in `SolverMethod.allCases`); a job present
    /// twice (a shard re-run) counts once, the later record winning.
    static func table(_ records: [QualityRecord]) -> String {
        var unique: [String: QualityRecord] = [:]
        for r in records { unique["\(r.task)|\(r.method)|\(r.image)"] = r }
        var lines = [header]
        let taskOrder = BenchTasks.all.map(\.name), methodOrder = SolverMethod.allCases.map(\.rawValue)
        func rank(_ r: QualityRecord) -> (Int, Int) {
            (taskOrder.firstIndex(of: r.task) ?? .max, methodOrder.firstIndex(of: r.method) ?? .max)
        }
        let groups = Dictionary(grouping: unique.values) { "\($0.task)|\($0.method)" }.values
        for g in groups.sorted(by: { rank($0[0]) < rank($1[0]) }) {
            lines.append(row(g.sorted { $0.image < $1.image }))
        }
        return lines.joined(separator: "\n")
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
    /// `noiseSigma`: this task's measurement noise, overriding `--noise-sigma` (the noisier sensor rows).
    struct Task {
        let name: String
        let spec: [String: Any]
        var noiseSigma: Double? = nil
    }
    nonisolated(unsafe) static let all: [Task] = [
        Task(name: "sr2-box", spec: ["type": "super_resolution", "factor": 2, "kernel": "box"]),
        Task(name: "sr2-bicubic", spec: ["type": "super_resolution", "factor": 2, "kernel": "bicubic"]),
        Task(name: "sr4", spec: ["type": "super_resolution", "factor": 4, "kernel": "bicubic"]),
        Task(name: "inpainting70", spec: ["type": "inpainting", "missing_fraction": 0.7, "mask_seed": 1]),
        Task(name: "gaussian-blur", spec: ["type": "gaussian_blur", "size": 9, "sigma": 1.5]),
        Task(name: "motion-blur", spec: ["type": "motion_blur", "size": 9, "intensity": 0.5, "kernel_seed": 1]),
        Task(name: "cs25", spec: ["type": "compressed_sensing", "ratio": 0.25, "matrix_seed": 1]),
        Task(name: "hdr", spec: ["type": "hdr", "gain": 2.0]),
        // real sensors are noisier: the same operators at σ = 0.05
        Task(name: "sr4-s05", spec: ["type": "super_resolution", "factor": 4, "kernel": "bicubic"], noiseSigma: 0.05),
        Task(name: "inpainting70-s05", spec: ["type": "inpainting", "missing_fraction": 0.7, "mask_seed": 1], noiseSigma: 0.05),
    ]

    static func select(_ list: String?) throws -> [Task] {
        guard let list else { return all }
        return try list.split(separator: ",").map { n in
            guard let t = all.first(where: { $0.name == n }) else { throw CLIError("unknown task \(n)") }
            return t
        }
    }
}
