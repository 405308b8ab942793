import DMiloFormats
import DMiloImage
import DMiloKernels
import DMiloModel
import DMiloOperators
import DMiloSolvers
import Foundation

extension OperatorError: CodedError {}
extension SolverError: CodedError {
    public var field: String? { code == "memory.budget" ? "memory_budget_mb" : (code == "budget.exceeded" ? "solver.budget" : nil) }
}

/// The loaded prior: the model, its identity for metrics.json, and a pool of instances so `--jobs N` can run
/// concurrently (a model instance owns its activation workspace and serves one job at a time).
public final class LoadedModel: @unchecked Sendable {
    public let path: String
    public let sha256: String
    /// `f32`, `f16` or `q8_0`: the dominant stored type of the weight tensors.
    public let weights: String
    public let schedule: NoiseSchedule
    public let sampleShape: [Int]
    private let load: () throws -> any DiffusionUNet
    private var free: [any DiffusionUNet]
    private let lock = NSLock()

    public init(path: String, load: @escaping () throws -> any DiffusionUNet, sha256: String, schedule: NoiseSchedule = NoiseSchedule()) throws {
        self.path = path
        self.load = load
        let first = try load()
        free = [first]
        self.sha256 = sha256
        self.schedule = schedule
        let s = first.sampleShape
        sampleShape = [s.channels, s.height, s.width]
        var counts: [String: Int] = [:]
        for (_, t) in first.tensorDTypes { counts[t.lowercased(), default: 0] += 1 }
        weights = LoadedModel.weightKind(counts)
    }

    /// Loads a diffusers or converted guided-diffusion (ADM) folder / safetensors file, or a dmilo GGUF file; the
    /// architecture and the noise schedule come from what travels with the weights (`DiffusionModels`).
    public static func open(path: String) throws -> LoadedModel {
        let sha = try ModelFiles.sha256(ofModelAt: path)
        let schedule = try DiffusionModels.schedule(ofModelAt: path)
        return try LoadedModel(path: path, load: { try DiffusionModels.load(path: path) }, sha256: sha, schedule: schedule)
    }

    static func weightKind(_ counts: [String: Int]) -> String {
        if counts.keys.contains(where: { $0.contains("q8") }) { return "q8_0" }
        if counts.keys.contains(where: { $0.contains("f16") || $0 == "bf16" }) { return "f16" }
        return "f32"
    }

    /// Takes a model instance (loading another if all are busy); give it back with `checkIn`.
    public func checkOut() throws -> any DiffusionUNet {
        lock.lock()
        if let m = free.popLast() { lock.unlock(); return m }
        lock.unlock()
        return try load()
    }

    public func checkIn(_ m: any DiffusionUNet) {
        lock.lock(); free.append(m); lock.unlock()
    }

    /// Another instance with its own workspace (for solvers that hold several tapes at once).
    public func replica() throws -> any DiffusionUNet { try load() }
}

/// Files that identify a model (for `metrics.json` `model.sha256`).
public enum ModelFiles {
    /// sha256 of the weights file (the GGUF file itself, or the folder's safetensors).
    public static func sha256(ofModelAt path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw JobError(code: "model.missing", message: "\(path): no such model")
        }
        var file = path
        if isDir.boolValue {
            let candidates = ["diffusion_pytorch_model.safetensors", "model.safetensors"].map { (path as NSString).appendingPathComponent($0) }
            guard let f = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw JobError(code: "model.missing", message: "\(path): no diffusion_pytorch_model.safetensors or model.safetensors")
            }
            file = f
        }
        return try SHA256.hex(ofFile: file)
    }
}

/// Runs one job end to end: read and check inputs, build A, solve, write results. `dmilod` and `dmilo reconstruct`
/// both use exactly this (INTERFACE.md: "run one job exactly as the daemon would").
public struct ReconstructionRunner: JobRunner {
    public let model: LoadedModel
    /// Optional hook for the quality benchmark: sees every outer iterate (never used for the returned image).
    public var observer: (@Sendable (Tensor, Int) -> Void)? = nil
    /// Optional initial latent (C order, the image's element count) replacing the seeded draw; set only by
    /// `dmilo reconstruct --initial-noise` for comparisons with Tools/reference_dmilo.py (never by the daemon).
    public var initialNoise: [Float]? = nil

    public init(model: LoadedModel) { self.model = model }

    public func run(job: ClaimedJob, outputDirectory: URL, control: JobControl) throws -> JobOutcome {
        let start = Date()
        let m = job.manifest
        if job.settings.threads > 0 { Threading.count = job.settings.threads }

        // Geometry: the model fixes the image shape; a manifest may state it (and is refused if it differs).
        let imageShape = m.imageShape ?? model.sampleShape
        guard imageShape == model.sampleShape else {
            throw JobError(code: "measurement.shape",
                           message: "\(job.name).json: image_shape \(imageShape) does not match the model's \(model.sampleShape)",
                           field: "image_shape")
        }
        // Inputs.
        let measurementName = m.measurement.description
        var meas = try JobInputs.measurement(job.read(m.measurement, field: "measurement"), name: measurementName, limits: InputLimits.png(forImage: imageShape))
        let op = try OperatorFactory.make(spec: m.operatorJSONObject, imageShape: imageShape) { name, field in
            let ref = try FileReference.parse(.string(name), field: field, file: "\(job.name).json")
            return try JobInputs.operatorArray(job.read(ref, field: field), name: name, field: field, limits: InputLimits.png(forImage: imageShape))
        }
        meas.y = try JobInputs.conform(meas.y, to: op.outputShape, name: measurementName, field: "measurement")
        let truth = try m.truth.map { ref in
            try JobInputs.truth(job.read(ref, field: "truth"), name: ref.description, imageShape: imageShape)
        }

        // Solver settings: per-operator defaults ← config/manifest `solver` ← caps.
        var p = try Self.parameters(for: job, operatorType: op.name)
        p.initialNoise = initialNoise
        try InputLimits.check(p, trainSteps: model.schedule.trainSteps, file: "\(job.name).json")
        let net = try model.checkOut()
        defer { model.checkIn(net) }
        let plan = try MemoryPlan.plan(p, stepBytes: net.vjpMemoryBytes(batch: 1), residentBytes: net.parameterBytes,
                                       budgetBytes: job.settings.memoryBudgetMB > 0 ? job.settings.memoryBudgetMB << 20 : nil)
        p.layerSpan = plan.layerSpan

        let problem = InverseProblem(model: net, schedule: model.schedule, op: op, y: meas.y, noiseSigma: m.noiseSigma)
        var lastBeat = Date.distantPast
        let result = try Solvers.run(p, problem: problem, makeReplica: { try model.replica() }, progress: { pr in
            let now = Date()
            if now.timeIntervalSince(lastBeat) > 0.5 {
                lastBeat = now
                let frac = pr.budget > 0 && pr.budget < Int.max ? Double(pr.unetEvaluations) / Double(pr.budget) : 0
                control.progress(frac, "\(pr.method.rawValue) \(pr.iteration)/\(pr.iterations) \(pr.stage)")
            }
            return !control.isCancelled
        }, observer: observer)
        if result.stoppedBy == .cancelled { throw JobCancelled() }

        // Results.
        let x = result.x
        try ResultChecks.requireFinite(x, metrics: ["residual": problem.relativeResidual(x)])
        var metrics: [String: Any] = [
            "job": job.name, "method": p.method.rawValue, "operator": op.name, "seed": m.seed,
            "noise_sigma": m.noiseSigma,
            "residual": problem.relativeResidual(x), "unet_evaluations": result.unetEvaluations,
            "budget": p.budget == Int.max ? NSNull() : p.budget as Any,
            "steps": p.steps, "outer_iterations": result.outerIterations, "stopped_by": result.stoppedBy.rawValue,
            "layer_span": p.layerSpan, "planned_memory_mb": Double(plan.estimatedBytes) / 1_048_576,
            "wall_seconds": Date().timeIntervalSince(start),
            "model": ["path": model.path, "sha256": model.sha256, "weights": model.weights],
            "image_shape": imageShape, "measurement_shape": op.outputShape,
        ]
        var psnr: Double?
        if let truth {
            psnr = try Metrics.psnr(truth: truth, estimate: x)
            metrics["psnr"] = psnr!.isFinite ? psnr! : 999.0
            metrics["ssim"] = try Metrics.ssim(truth: truth, estimate: x)
        }
        metrics["peak_rss_mb"] = peakRSSMegabytes() ?? NSNull()
        let panels = [Self.displayable(meas.y, op: op), x] + (truth.map { [$0] } ?? [])
        let labels = ["measurement", "\(p.method.rawValue)"] + (truth != nil ? ["truth"] : [])
        try ResultFiles.write(reconstruction: x, bitDepth: meas.pngBitDepth ?? 8, montagePanels: panels, labels: labels,
                              metrics: metrics, to: outputDirectory)
        let summary = String(format: "%@ on %@: %d UNet evaluations, %.1f s", p.method.rawValue, op.name,
                             result.unetEvaluations, Date().timeIntervalSince(start)) + (psnr.map { String(format: ", PSNR %.2f dB", $0) } ?? "")
        return JobOutcome(method: p.method.rawValue, unetEvaluations: result.unetEvaluations, psnr: psnr, summary: summary)
    }

    /// The measurement as a picture: inpainting shows unobserved pixels as mid-gray (their values are ignored).
    public static func displayable(_ y: Tensor, op: any MeasurementOperator) -> Tensor {
        guard let inp = op as? Inpainting else { return y }
        let out = y.copy()
        let plane = inp.mask.count
        for i in 0..<out.count where inp.mask[i % plane] == 0 { out[i] = 0 }
        return out
    }

    /// Defaults for the method and operator, then the job's `solver` settings (config defaults merged with the
    /// manifest by the daemon), then the budget cap. The seed is the manifest's.
    public static func parameters(for job: ClaimedJob, operatorType: String) throws -> SolverParameters {
        let s = job.settings.solver
        let methodName = s.method ?? "dmilo-pgd"
        guard let method = SolverMethod(rawValue: methodName) else {
            throw JobError.manifest("unknown solver method \(methodName)", field: "solver.method")
        }
        var p: SolverParameters
        if s.preset == "paper" {
            guard let paper = SolverDefaults.paper(method: method, operatorType: operatorType) else {
                throw JobError.manifest("solver.preset: the paper preset covers dmilo, dmilo-pgd and dmplug on inpainting, " +
                                        "super_resolution and the blurs (the official code has no \(methodName) setting for \(operatorType))",
                                        field: "solver.preset")
            }
            p = paper
        } else {
            p = SolverDefaults.parameters(method: method, operatorType: operatorType)
        }
        if let v = s.steps { p.steps = v }
        if let v = s.outer { p.outer = v }
        if let v = s.inner { p.inner = v; p.dpsSteps = v }
        if let v = s.lr { p.lrZ = v }
        if let v = s.lrZ { p.lrZ = v }
        if let v = s.lrNu { p.lrNu = v }
        if let v = s.lrX { p.lrX = v }
        if let v = s.lambda { p.lambda = v }
        if let v = s.eta, v != 0, method != .dps {
            throw JobError.manifest("solver.eta: only eta = 0 (deterministic DDIM) is supported for \(methodName)", field: "solver.eta")
        }
        if let v = s.discrepancyTau { p.discrepancyTau = v }
        p.budget = min(s.budget ?? job.settings.maxBudget, job.settings.maxBudget)
        p.seed = job.manifest.seed
        return p
    }
}
