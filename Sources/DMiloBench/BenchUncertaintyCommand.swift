// `dmilo bench uncertainty`: are DAPS's error bars honest? On held-out images with truth, per task: PSNR of the
// posterior mean of K chains, coverage of the truth by mean ± 1σ / ± 2σ per pixel, corr(|error|, σ) over pixels,
// raw and after one σ scale fitted on the tuning split (test images 0–99); beside it DAPS with one chain, DPS
// (PSNR, wall time) and the wall-time ratio of K batched chains to one chain at the same per-chain settings.
//
// Compute is scarce, so a run appends one JSON record per (task, image, run) to --records, skips what the file
// already holds (resumable, shardable with --first/--count), and --merge prints the table from record files.

import ArgumentParser
import DMiloImage
import DMiloJobs
import DMiloKernels
import DMiloModel
import DMiloOperators
import DMiloSolvers
import Foundation

struct BenchUncertaintyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uncertainty",
        abstract: "Posterior-mean PSNR, σ coverage (raw and calibrated) and |error|–σ correlation of DAPS; DPS and K = 1 beside it.")

    @Option(help: "Model: diffusers folder, .safetensors or .gguf (required unless --merge).") var model: String?
    @Option(help: "Folder of clean test PNGs named test-NNNNN.png (NNNNN = the test-split index).")
    var images = "Tests/Data/fashion-mnist-test"
    @Option(help: "Number of images (the first N files in name order after --first).") var count = 20
    @Option(help: "Skip this many files (in name order) before taking --count.") var first = 0
    @Option(help: "Comma-separated tasks.") var tasks = "sr2-bicubic,sr4,inpainting70,gaussian-blur,cs25"
    @Option(help: "Runs per image: daps-k (K chains, defaults), daps-1 (one chain, defaults), daps-1-matched (one chain at the K-chain run's per-chain settings), dps.")
    var runs = "daps-k,daps-1,daps-1-matched,dps"
    @Option(help: "Chains K of the daps-k run.") var samples = 8
    @Option(name: .customLong("noise-sigma"), help: "Measurement noise std (model units).") var noiseSigma = 0.01
    @Option(help: "UNet-evaluation budget per job (the daemon's default cap).") var budget = 2000
    @Option(help: "Threads.") var threads: Int?
    @Option(help: computeHelp) var compute: ComputeMode = .auto
    @Option(help: "Append one JSON record per job to this file; jobs it already holds are skipped (resume).")
    var records: String?
    @Option(parsing: .upToNextOption, help: "Print the table of these record files instead of running anything.")
    var merge: [String] = []
    @Option(help: "With --merge: write the σ scale fitted on images 0–99 to this JSON file (e.g. MODEL/uncertainty-calibration.json).")
    var writeCalibration: String?

    func run() throws {
        if !merge.isEmpty {
            let all = try merge.flatMap { try UncertaintyRecord.read(path: $0) }
            let summary = UncertaintySummary(records: all, samples: samples)
            print(summary.table())
            if let writeCalibration { try summary.writeCalibration(to: writeCalibration) }
            return
        }
        let (loaded, net, files) = try openPerImageBench(
            model: model, compute: compute, threads: threads, images: images, first: first, count: count)
        let taskList = try BenchTasks.select(tasks)
        let runList = runs.split(separator: ",").map(String.init)
        for r in runList where !["daps-k", "daps-1", "daps-1-matched", "dps"].contains(r) { throw CLIError("unknown run \(r)") }
        let doneKeys = Set(
            try records.map { path in
                FileManager.default.fileExists(atPath: path) ? try UncertaintyRecord.read(path: path).map(\.key) : []
            } ?? [])
        let sink = try records.map { path -> FileHandle in
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw CLIError("\(path): cannot open for appending (errno \(errno))") }
            return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        }
        // Image-major: when the time runs out every task has about as many images.
        for (position, file) in files.enumerated() {
            let image = Self.testIndex(file) ?? (first + position)
            let truth = try PNGImage.read(from: (images as NSString).appendingPathComponent(file)).modelUnits()
            for task in taskList {
                let op = try OperatorFactory.make(spec: task.spec, imageShape: truth.shape) { _, f in throw CLIError("\(f): no files in bench") }
                let y = op.apply(truth)
                var rng = SeededRandom(seed: UInt64(image), stream: "measurement-noise")
                for i in 0..<y.count { y[i] += Float(rng.gaussian() * noiseSigma) }
                let problem = InverseProblem(model: net, schedule: loaded.schedule, op: op, y: y, noiseSigma: noiseSigma)
                var perChainLevels: Int?
                for run in runList {
                    let key = "\(task.name)|\(image)|\(run)"
                    if doneKeys.contains(key) { continue }
                    var s = SolverSettings()
                    s.method = run == "dps" ? "dps" : "daps"
                    if run == "daps-k" { s.samples = samples }
                    var p = try s.parameters(operatorType: op.name, maxBudget: budget, seed: UInt64(image))
                    if run == "daps-1-matched" {
                        // the K-chain run's per-chain schedule: the levels its budget share allowed
                        var q = p; q.samples = samples
                        p.annealingSteps = try perChainLevels ?? DAPSSolver.plan(q, chains: samples, schedule: loaded.schedule).count
                    }
                    let t0 = Date(), c0 = Self.processCPUSeconds()
                    let res = try Solvers.run(p, problem: problem, makeReplica: { try loaded.replica() })
                    let secs = Date().timeIntervalSince(t0), cpu = Self.processCPUSeconds() - c0
                    if run == "daps-k" { perChainLevels = res.outerIterations }
                    var r = UncertaintyRecord(
                        task: task.name, image: image, run: run, samples: max(1, res.samples.count),
                        psnr: try Metrics.psnr(truth: truth, estimate: res.x), seconds: secs,
                        evaluations: res.unetEvaluations, cpuSeconds: cpu, absError: nil, sigma: nil)
                    if res.samples.count > 1 {
                        let sd = PosteriorSummary.standardDeviation(res.samples)
                        r.absError = (0..<truth.count).map { abs(res.x[$0] - truth[$0]) }
                        r.sigma = (0..<sd.count).map { sd[$0] }
                    }
                    print(
                        String(
                            format: "%@ image %d %@: PSNR %.2f dB, %d evaluations, %.1f s (CPU %.1f s)", task.name, image, run,
                            r.psnr, r.evaluations, secs, cpu))
                    fflush(nil)
                    if let sink { sink.write(try r.jsonLine()) }
                }
            }
        }
        try sink?.close()
    }

    /// CPU time of this process (all threads, user + system): on a shared machine the wall time measures the
    /// neighbours as much as the job, so the table gives both.
    static func processCPUSeconds() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        let t = { (v: timeval) in Double(v.tv_sec) + Double(v.tv_usec) / 1e6 }
        return t(u.ru_utime) + t(u.ru_stime)
    }

    /// The test-split index in a file name "test-00123.png" (123), so seeds and the calibration split follow the
    /// image, not its position in a folder.
    static func testIndex(_ file: String) -> Int? {
        let digits = file.split(separator: "-").last?.split(separator: ".").first
        return digits.flatMap { Int($0) }
    }
}

/// One benchmark job; `absError` and `sigma` (per pixel) only for runs of K > 1 chains.
struct UncertaintyRecord: JSONLinesRecord, Hashable {
    static let recordKind = "an uncertainty record"
    var task: String
    var image: Int
    var run: String
    var samples: Int
    var psnr: Double
    var seconds: Double
    var evaluations: Int
    /// CPU seconds of the job (process user + system time).
    var cpuSeconds: Double?
    var absError: [Float]?
    var sigma: [Float]?

    var key: String { "\(task)|\(image)|\(run)" }
}
