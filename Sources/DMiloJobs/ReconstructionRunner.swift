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

/// The loaded prior: the model file (opened once), its identity for metrics.json, and a pool of instances that
/// share its weights, so `--jobs N` and multi-tape solvers cost one workspace each, not one copy of the weights.
public final class LoadedModel: @unchecked Sendable {
    public let file: ModelFile
    public let pool: ModelPool
    public var path: String { file.path }
    public let sha256: String
    /// `f32`, `f16` or `q8_0`: the dominant stored type of the weight tensors.
    public let weights: String
    public var schedule: NoiseSchedule { file.schedule }
    public let sampleShape: [Int]

    /// Opens a diffusers or converted guided-diffusion (ADM) folder / safetensors file, or a dmilo GGUF file; the
    /// architecture and the noise schedule come from what travels with the weights (`ModelFile`).
    public init(file: ModelFile) throws {
        self.file = file
        sha256 = try file.sha256()  // before loading: the hash's pass over the file does not add to the load's peak
        pool = try ModelPool(file: file)
        let first = pool.prototype, s = first.sampleShape
        sampleShape = [s.channels, s.height, s.width]
        var counts: [String: Int] = [:]
        for (_, t) in first.tensorDTypes { counts[t.lowercased(), default: 0] += 1 }
        weights = LoadedModel.weightKind(counts)
    }

    /// Opens the model file once and picks the convolutions' precision for the pool (`ComputeSelection`; `auto`
    /// measures the accuracy gate once). Every pooled instance and replica shares the same packed weights.
    public static func open(
        path: String, compute: ComputeMode = .auto, log: @escaping (String) -> Void = { _ in }
    )
        throws -> LoadedModel
    {
        let loaded = try LoadedModel(file: try ModelFile(path: path))
        try ComputeSelection.apply(compute, to: loaded.pool.prototype, log: log)
        return loaded
    }

    /// Precision of the pool's convolutions (`f32`, `bf16`, `int8`).
    public var compute: String { pool.prototype.computePrecision.rawValue }

    static func weightKind(_ counts: [String: Int]) -> String {
        if counts.keys.contains(where: { $0.contains("q8") }) { return "q8_0" }
        if counts.keys.contains(where: { $0.contains("f16") || $0 == "bf16" }) { return "f16" }
        return "f32"
    }

    /// Takes a model instance (a weight-sharing replica if all are busy); give it back with `checkIn`.
    public func checkOut() throws -> any DiffusionUNet { pool.checkOut() }
    public func checkIn(_ m: any DiffusionUNet) { pool.checkIn(m) }
    /// Another instance with its own workspace and the same weights (for solvers that hold several tapes at once).
    public func replica() throws -> any DiffusionUNet { pool.replica() }
}

/// Runs one job end to end: read and check inputs, build A, solve, write results. `dmilod` and `dmilo reconstruct`
/// both use exactly this (docs/INTERFACE.md: "run one job exactly as the daemon would").
public struct ReconstructionRunner: JobRunner {
    public let model: LoadedModel
    /// Optional hook for the quality benchmark: sees every outer iterate (never used for the returned image).
    public var observer: (@Sendable (Tensor, Int) -> Void)? = nil
    /// Optional initial latent (C order, the image's element count) replacing the seeded draw; set only by
    /// `dmilo reconstruct --initial-noise` for comparisons with Tools/reference_dmilo.py (never by the daemon).
    public var initialNoise: [Float]? = nil

    public init(model: LoadedModel) { self.model = model }

    public func run(job: ClaimedJob, outputDirectory: URL, control: JobControl) throws -> JobOutcome {
        // The job's thread budget holds for this thread only: jobs running at once keep their own (0 = the default).
        try Threading.withBudget(job.settings.threads > 0 ? job.settings.threads : Threading.count) {
            try runWithinBudget(job: job, outputDirectory: outputDirectory, control: control)
        }
    }

    func runWithinBudget(job: ClaimedJob, outputDirectory: URL, control: JobControl) throws -> JobOutcome {
        let start = Date()
        let m = job.manifest

        // Geometry: the model fixes the image shape; a manifest may state it (and is refused if it differs).
        let imageShape = m.imageShape ?? model.sampleShape
        guard imageShape == model.sampleShape else {
            throw JobError(
                code: "measurement.shape",
                message: "\(job.name).json: image_shape \(imageShape) does not match the model's \(model.sampleShape)",
                field: "image_shape")
        }
        // Inputs: the operator first, so the measurement is checked against what it expects for this model.
        let spec = try OperatorSpec(json: .object(m.operatorObject))
        let op = try OperatorFactory.make(spec: spec, imageShape: imageShape) { name, field in
            let ref = try FileReference.parse(.string(name), field: field, file: "\(job.name).json")
            return try JobInputs.operatorArray(job.read(ref, field: field), name: name, field: field, limits: InputLimits.png(forImage: imageShape))
        }
        let geometry = MeasurementGeometry(
            imageShape: imageShape, expected: op.outputShape,
            operatorDescription: MeasurementGeometry.describe(spec), color: m.color,
            manifestFile: "\(job.name).json")
        let meas = try geometry.read(job.read(m.measurement, field: "measurement"), name: m.measurement.description)
        let truth = try m.truth.map { ref in
            try JobInputs.truth(
                job.read(ref, field: "truth"), name: ref.description, imageShape: imageShape,
                convert: geometry.convertTruth)
        }

        // Solver settings: per-operator defaults ← config/manifest `solver` ← caps.
        var p = try Self.parameters(for: job, operatorType: op.name, defaultMethod: SolverDefaults.method(for: op))
        p.initialNoise = initialNoise
        try InputLimits.check(p, trainSteps: model.schedule.trainSteps, file: "\(job.name).json")
        // Pooled instances share one packed weight set, so a manifest `solver.compute` other than the pool's gets a
        // private instance (own store) instead of re-packing weights another job may be using.
        var net = try model.checkOut()
        var pooled = true
        defer { if pooled { model.checkIn(net) } }
        if let c = job.settings.solver.compute, let mode = ComputeMode(rawValue: c), mode != .auto,
            mode.rawValue != net.computePrecision.rawValue
        {
            model.checkIn(net); pooled = false
            net = try model.file.instantiate()
            do { try ComputeSelection.apply(mode, to: net) } catch let e as ModelError {
                throw JobError.manifest("\(job.name): solver.compute: \(e.message)", field: "solver.compute")
            }
        }
        let plan = try MemoryPlan.plan(
            p, stepBytes: net.vjpMemoryBytes(batch: 1), residentBytes: net.parameterBytes,
            budgetBytes: job.settings.memoryBudgetMB > 0 ? job.settings.memoryBudgetMB << 20 : nil)
        p.layerSpan = plan.layerSpan

        // Progress and cancellation ride on the solver's evaluation counter (every method counts there).
        let monitor = JobProgressMonitor(
            control: control, method: p.method.rawValue,
            budget: p.budget == Int.max ? nil : p.budget, started: start)
        let problem = InverseProblem(
            model: net, schedule: model.schedule, op: op, y: meas.y, noiseSigma: m.noiseSigma,
            monitor: monitor)
        let result = try Solvers.run(
            p, problem: problem, makeReplica: { [net] in net.replica() },
            progress: monitor.update, observer: observer)
        if result.stoppedBy == .cancelled { throw JobCancelled() }
        monitor.stage("writing results", residual: result.residualHistory.last)

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
            "model": ["name": m.model ?? "default", "path": model.path, "sha256": model.sha256, "weights": model.weights],
            "compute": net.computePrecision.rawValue, "kernels": CPUFeatures.summary,
            "image_shape": imageShape, "measurement_shape": op.outputShape,
            "unet_vjp_evaluations": result.unetVJPEvaluations,
        ]
        if let c = m.color { metrics["color"] = c.rawValue }
        // Posterior samplers: x is the mean of K samples; their spread is the uncertainty (K ≥ 2 only).
        let sigma = result.samples.count > 1 ? PosteriorSummary.standardDeviation(result.samples) : nil
        if p.method.isPosteriorSampler {
            // DAPS's σ scale fitted by `dmilo bench uncertainty` (UncertaintyCalibration), if the model has one
            let scale = p.method == .daps ? try UncertaintyCalibration.scale(forModel: model.path) : nil
            if let sigma, let scale { sigma.scale(by: Float(scale)) }
            metrics["sigma_scale"] = scale ?? 1
            metrics["posterior_samples"] = result.samples.count
            metrics["mean_sigma"] = sigma.map { PosteriorSummary.meanValue($0) } ?? NSNull()
            if let sigma, let truth {
                metrics["coverage_2sigma"] = PosteriorSummary.coverage(truth: truth, mean: x, sigma: sigma, z: 2)
            }
        }
        var psnr: Double?
        if let truth {
            psnr = try Metrics.psnr(truth: truth, estimate: x)
            metrics["psnr"] = psnr!.isFinite ? psnr! : 999.0
            metrics["ssim"] = try Metrics.ssim(truth: truth, estimate: x)
        }
        metrics["peak_rss_mb"] = peakRSSMegabytes() ?? NSNull()
        let sigmaPanel = sigma.map { [UncertaintyMap.colorize($0)] } ?? []
        let panels = [meas.y, x] + sigmaPanel + (truth.map { [$0] } ?? [])
        let labels =
            ["measurement", "\(p.method.rawValue)"]
            + (sigma.map { [String(format: "sigma 0-%.3f", UncertaintyMap.largest($0))] } ?? []) + (truth != nil ? ["truth"] : [])
        let header = Self.montageHeader(job: job.name, operator: geometry.operatorDescription, metrics: metrics)
        let masks = [(op as? Inpainting)?.mask] + Array(repeating: nil, count: panels.count - 1)
        try ResultFiles.write(
            reconstruction: x, bitDepth: meas.pngBitDepth ?? 8, montagePanels: panels, labels: labels,
            metrics: metrics, to: outputDirectory, montageHeader: header, montageMasks: masks)
        if let sigma {
            try ResultFiles.writeUncertainty(
                sigma: sigma, samples: job.settings.solver.keepSamples == true ? result.samples : nil,
                to: outputDirectory)
        }
        let summary =
            String(
                format: "%@ on %@: %d UNet evaluations, %.1f s", p.method.rawValue, op.name,
                result.unetEvaluations, Date().timeIntervalSince(start)) + (psnr.map { String(format: ", PSNR %.2f dB", $0) } ?? "")
        return JobOutcome(method: p.method.rawValue, unetEvaluations: result.unetEvaluations, psnr: psnr, summary: summary)
    }

    /// The measurement as a picture with unobserved inpainting pixels at mid-gray (their values are ignored), for
    /// the quality benchmark's grids; job montages hatch those pixels instead (``montageHeader``, `Montage` masks).
    public static func displayable(_ y: Tensor, op: any MeasurementOperator) -> Tensor {
        guard let inp = op as? Inpainting else { return y }
        let out = y.copy()
        let plane = inp.mask.count
        for i in 0..<out.count where inp.mask[i % plane] == 0 { out[i] = 0 }
        return out
    }

    /// The montage's header fields, from the metrics the job writes: job, operator, method, UNet evaluations
    /// against the budget, why the solver stopped, PSNR / SSIM when a truth was given.
    public static func montageHeader(job: String, operator description: String, metrics: [String: Any]) -> [String] {
        var fields = ["JOB \(job)", description, "\(metrics["method"] ?? "")"]
        let evals = metrics["unet_evaluations"] as? Int ?? 0
        fields.append((metrics["budget"] as? Int).map { "\(evals)/\($0) UNET EVALS" } ?? "\(evals) UNET EVALS")
        if let s = metrics["stopped_by"] as? String { fields.append("STOPPED BY \(s)") }
        if let psnr = metrics["psnr"] as? Double { fields.append(String(format: "PSNR %.2f DB", psnr)) }
        if let ssim = metrics["ssim"] as? Double { fields.append(String(format: "SSIM %.3f", ssim)) }
        return fields
    }

    /// The job's solver parameters: its `solver` settings (config defaults merged with the manifest by the daemon)
    /// through the one settings → parameters mapping, with the manifest's seed.
    public static func parameters(
        for job: ClaimedJob, operatorType: String, defaultMethod: SolverMethod? = nil
    ) throws -> SolverParameters {
        try job.settings.solver.parameters(
            operatorType: operatorType, maxBudget: job.settings.maxBudget,
            seed: job.manifest.seed, defaultMethod: defaultMethod)
    }
}
