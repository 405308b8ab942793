import DMiloSolvers

/// Solver settings a manifest may give (docs/INTERFACE.md "Manifest", `solver`), and the one mapping from settings
/// to ``SolverParameters`` that the daemon, `dmilo reconstruct` and `dmilo bench quality` all go through.
/// Unset fields take the per-operator defaults; `budget` is capped by the daemon's `max_budget`.
public struct SolverSettings: Sendable, Equatable {
    public var method: String?
    public var steps: Int?
    /// Outer iterations: ILO sweeps for DMILO / DMILO-PGD; for DMPlug the number of checkpoints (the iterate is
    /// observed and the discrepancy principle checked every inner/outer iterations); unused by DPS.
    public var outer: Int?
    /// Inner Adam iterations per layer per sweep (DMPlug: total iterations). For DPS, see ``dpsSteps``.
    public var inner: Int?
    /// Learning rate of the latents: `lr` and `lr_z` are two spellings of one knob (`lr_z` wins if both are given).
    public var lrZ: Double?
    public var lrNu: Double?
    public var lrX: Double?
    public var lambda: Double?
    public var eta: Double?
    public var budget: Int?
    /// DPS sampling steps (`dps_steps`). Manifests written before it existed gave DPS its step count through
    /// `inner`; a DPS job without `dps_steps` still reads `inner` that way, so they keep their meaning.
    public var dpsSteps: Int?
    /// τ of the discrepancy principle: stop after the outer iteration whose residual ‖y − A(x)‖ ≤ τ·σ·√m
    /// (σ = `noise_sigma`, m = measurement size). Absent = run the iteration count / budget out.
    public var discrepancyTau: Double?
    /// Residual-plateau fraction of the ILO methods' early stop (``SolverParameters/plateau``).
    public var plateau: Double?
    /// `false` turns the default early stop off (the job runs its iterations / budget out); an explicit
    /// `discrepancy_tau` or `plateau` still applies.
    public var earlyStop: Bool?
    /// `paper`: start from the official per-task hyperparameters (docs/algorithms.md "Hyperparameters") instead
    /// of dmilo's defaults.
    public var preset: String?
    /// `f32` | `bf16` | `int8` | `auto`: precision of the UNet convolutions for this job (absent: the runner's).
    public var compute: String?
    /// Tuning knobs only the quality benchmark's `--overrides` may set (manifests cannot): z-prior weight, PGD
    /// steps, DPS guidance scale ζ, baseline smoothness μ, DDIM steps per ILO layer.
    public var zPrior: Double?
    public var pgdSteps: Int?
    /// DMILO-PGD's data step: `squared`, `unsquared` or `accelerated` (``PGDForm``); a manifest may choose it, e.g.
    /// to run the official forms with dmilo's budget.
    public var pgdForm: String?
    /// DMILO-PGD: end with one more data step after the last projection (``SolverParameters/pgdFinalDataStep``).
    public var pgdFinalDataStep: Bool?
    public var dpsZeta: Double?
    public var baselineMu: Double?
    public var layerSpan: Int?
    /// Posterior samplers: K chains (`samples`), and whether `samples.npy` is written (`keep_samples`).
    public var samples: Int?
    public var keepSamples: Bool?
    /// DAPS tuning knobs (benchmark `--overrides` only): annealing levels, ODE steps per level, Langevin steps and
    /// step δ (a fraction of the stable step 1/L).
    public var annealingSteps: Int?
    public var odeSteps: Int?
    public var mcmcSteps: Int?
    public var mcmcStep: Double?
    public var mcmcStepMinRatio: Double?
    /// DAPS: σ of the last annealing level, the likelihood step (`langevin` or, for linear operators, `exact`),
    /// and whether the last level returns the conditional mean instead of a draw.
    public var dapsSigmaMin: Double?
    public var dapsLikelihood: String?
    public var dapsFinalMean: Bool?
    public var dapsDataStd: Double?

    public init() {}

    /// Values `preset` may take.
    public static let presets: Set<String> = ["paper"]

    /// Methods the solvers layer implements.
    public static let methods: Set<String> = Set(SolverMethod.allCases.map(\.rawValue))
    /// Every key a manifest's `solver` may hold; anything else is `manifest.invalid` (typos are caught).
    public static let keys: Set<String> = [
        "method", "steps", "outer", "inner", "lr", "lr_z", "lr_nu", "lr_x",
        "lambda", "eta", "budget", "dps_steps", "discrepancy_tau", "plateau", "early_stop", "preset",
        "pgd_form", "pgd_final_data_step",
        "compute", "samples", "keep_samples",
    ]
    /// `keys` plus the tuning knobs, for `dmilo bench quality --overrides`.
    public static let tuningKeys: Set<String> = keys.union([
        "z_prior", "pgd_steps", "dps_zeta", "baseline_mu", "layer_span",
        "annealing_steps", "ode_steps", "mcmc_steps", "mcmc_step", "mcmc_step_min_ratio",
        "daps_sigma_min", "daps_likelihood", "daps_final_mean", "daps_data_std",
    ])

    /// Fields of `other` that are set override fields of `self` (manifest over config defaults).
    public func overridden(by other: SolverSettings) -> SolverSettings {
        var s = self
        s.method = other.method ?? s.method
        s.steps = other.steps ?? s.steps
        s.outer = other.outer ?? s.outer
        s.inner = other.inner ?? s.inner
        s.lrZ = other.lrZ ?? s.lrZ
        s.lrNu = other.lrNu ?? s.lrNu
        s.lrX = other.lrX ?? s.lrX
        s.lambda = other.lambda ?? s.lambda
        s.eta = other.eta ?? s.eta
        s.budget = other.budget ?? s.budget
        s.dpsSteps = other.dpsSteps ?? s.dpsSteps
        s.discrepancyTau = other.discrepancyTau ?? s.discrepancyTau
        s.plateau = other.plateau ?? s.plateau
        s.earlyStop = other.earlyStop ?? s.earlyStop
        s.preset = other.preset ?? s.preset
        s.compute = other.compute ?? s.compute
        s.zPrior = other.zPrior ?? s.zPrior
        s.pgdSteps = other.pgdSteps ?? s.pgdSteps
        s.pgdForm = other.pgdForm ?? s.pgdForm
        s.pgdFinalDataStep = other.pgdFinalDataStep ?? s.pgdFinalDataStep
        s.dpsZeta = other.dpsZeta ?? s.dpsZeta
        s.baselineMu = other.baselineMu ?? s.baselineMu
        s.layerSpan = other.layerSpan ?? s.layerSpan
        s.samples = other.samples ?? s.samples
        s.keepSamples = other.keepSamples ?? s.keepSamples
        s.annealingSteps = other.annealingSteps ?? s.annealingSteps
        s.odeSteps = other.odeSteps ?? s.odeSteps
        s.mcmcSteps = other.mcmcSteps ?? s.mcmcSteps
        s.mcmcStep = other.mcmcStep ?? s.mcmcStep
        s.mcmcStepMinRatio = other.mcmcStepMinRatio ?? s.mcmcStepMinRatio
        s.dapsSigmaMin = other.dapsSigmaMin ?? s.dapsSigmaMin
        s.dapsLikelihood = other.dapsLikelihood ?? s.dapsLikelihood
        s.dapsFinalMean = other.dapsFinalMean ?? s.dapsFinalMean
        s.dapsDataStd = other.dapsDataStd ?? s.dapsDataStd
        return s
    }

    /// Strict parse of a `solver` object; `path` prefixes field names in errors (`solver`). `allowed` is the key
    /// set (``keys`` for manifests and the daemon config, ``tuningKeys`` for the benchmark).
    public static func parse(
        _ value: JSONValue, path: String = "solver", file: String,
        allowed: Set<String> = keys
    ) throws -> SolverSettings {
        guard let o = value.objectValue else {
            throw JobError.manifest("\(file): `\(path)` must be an object, not \(value.typeName)", field: path)
        }
        for key in o.keys.sorted() where !allowed.contains(key) {
            throw JobError.manifest(
                "\(file): unknown key `\(path).\(key)` (allowed: \(allowed.sorted().joined(separator: ", ")))",
                field: "\(path).\(key)")
        }
        var s = SolverSettings()
        if let m = o["method"] {
            guard let name = m.stringValue, methods.contains(name) else {
                throw JobError.manifest(
                    "\(file): `\(path).method` must be one of \(methods.sorted().joined(separator: ", "))",
                    field: "\(path).method")
            }
            s.method = name
        }
        func int(_ k: String) throws -> Int? {
            guard let v = o[k] else { return nil }
            guard let i = v.intValue, i >= 1 else {
                throw JobError.manifest("\(file): `\(path).\(k)` must be a positive integer", field: "\(path).\(k)")
            }
            return i
        }
        func real(_ k: String) throws -> Double? {
            guard let v = o[k] else { return nil }
            guard let d = v.doubleValue, d >= 0 else {
                throw JobError.manifest("\(file): `\(path).\(k)` must be a non-negative number", field: "\(path).\(k)")
            }
            return d
        }
        s.steps = try int("steps"); s.outer = try int("outer"); s.inner = try int("inner"); s.budget = try int("budget")
        s.dpsSteps = try int("dps_steps")
        let lr = try real("lr")
        s.lrZ = try real("lr_z") ?? lr
        s.lrNu = try real("lr_nu"); s.lrX = try real("lr_x")
        s.lambda = try real("lambda"); s.eta = try real("eta")
        s.discrepancyTau = try real("discrepancy_tau")
        s.plateau = try real("plateau")
        if let v = o["early_stop"] {
            guard case .bool(let b) = v else {
                throw JobError.manifest("\(file): `\(path).early_stop` must be true or false", field: "\(path).early_stop")
            }
            s.earlyStop = b
        }
        s.zPrior = try real("z_prior"); s.pgdSteps = try int("pgd_steps"); s.dpsZeta = try real("dps_zeta")
        s.baselineMu = try real("baseline_mu"); s.layerSpan = try int("layer_span")
        s.samples = try int("samples")
        if let v = o["keep_samples"] {
            guard case .bool(let b) = v else {
                throw JobError.manifest("\(file): `\(path).keep_samples` must be true or false", field: "\(path).keep_samples")
            }
            s.keepSamples = b
        }
        s.annealingSteps = try int("annealing_steps"); s.odeSteps = try int("ode_steps")
        s.mcmcSteps = try int("mcmc_steps"); s.mcmcStep = try real("mcmc_step")
        s.mcmcStepMinRatio = try real("mcmc_step_min_ratio"); s.dapsSigmaMin = try real("daps_sigma_min")
        s.dapsDataStd = try real("daps_data_std")
        if let v = o["pgd_form"] {
            guard let name = v.stringValue, PGDForm(rawValue: name) != nil else {
                throw JobError.manifest(
                    "\(file): `\(path).pgd_form` must be squared, unsquared or accelerated", field: "\(path).pgd_form")
            }
            s.pgdForm = name
        }
        if let v = o["daps_likelihood"] {
            guard let name = v.stringValue, ["langevin", "exact"].contains(name) else {
                throw JobError.manifest("\(file): `\(path).daps_likelihood` must be langevin or exact", field: "\(path).daps_likelihood")
            }
            s.dapsLikelihood = name
        }
        if let v = o["pgd_final_data_step"] {
            guard case .bool(let b) = v else {
                throw JobError.manifest("\(file): `\(path).pgd_final_data_step` must be true or false", field: "\(path).pgd_final_data_step")
            }
            s.pgdFinalDataStep = b
        }
        if let v = o["daps_final_mean"] {
            guard case .bool(let b) = v else {
                throw JobError.manifest("\(file): `\(path).daps_final_mean` must be true or false", field: "\(path).daps_final_mean")
            }
            s.dapsFinalMean = b
        }
        if let v = o["compute"] {
            guard let name = v.stringValue, ["f32", "bf16", "int8", "auto"].contains(name) else {
                throw JobError.manifest("\(file): `\(path).compute` must be one of auto, bf16, f32, int8", field: "\(path).compute")
            }
            s.compute = name
        }
        if let v = o["preset"] {
            guard let name = v.stringValue, presets.contains(name) else {
                throw JobError.manifest(
                    "\(file): `\(path).preset` must be one of \(presets.sorted().joined(separator: ", "))",
                    field: "\(path).preset")
            }
            s.preset = name
        }
        if let v = s.plateau, v >= 1 {
            throw JobError.manifest("\(file): `\(path).plateau` must be a fraction below 1", field: "\(path).plateau")
        }
        if s.discrepancyTau == 0 {
            throw JobError.manifest("\(file): `\(path).discrepancy_tau` must be positive", field: "\(path).discrepancy_tau")
        }
        return s
    }

    /// The solver parameters of a job: the defaults for the method and operator (or the paper preset), then these
    /// settings, then the budget capped at `maxBudget` (here and nowhere else).
    /// `defaultMethod`: the method when none is set (the caller's ``SolverDefaults/method(for:)`` of the built
    /// operator; nil: the operator type's).
    public func parameters(
        operatorType: String, maxBudget: Int, seed: UInt64, defaultMethod: SolverMethod? = nil
    ) throws -> SolverParameters {
        let methodName = method ?? (defaultMethod ?? SolverDefaults.method(operatorType: operatorType)).rawValue
        guard let m = SolverMethod(rawValue: methodName) else {
            throw JobError.manifest("unknown solver method \(methodName)", field: "solver.method")
        }
        var p: SolverParameters
        if preset == "paper" {
            guard let paper = SolverDefaults.paper(method: m, operatorType: operatorType) else {
                throw JobError.manifest(
                    "solver.preset: the paper preset covers dmilo, dmilo-pgd and dmplug on inpainting, "
                        + "super_resolution and the blurs (the official code has no \(methodName) setting for \(operatorType))",
                    field: "solver.preset")
            }
            p = paper
        } else {
            p = SolverDefaults.parameters(method: m, operatorType: operatorType)
        }
        if let v = steps { p.steps = v }
        if let v = outer { p.outer = v }
        if let v = inner { p.inner = v }
        if let v = dpsSteps ?? (m == .dps ? inner : nil) { p.dpsSteps = v }
        if let v = lrZ { p.lrZ = v }
        if let v = lrNu { p.lrNu = v }
        if let v = lrX { p.lrX = v }
        if let v = lambda { p.lambda = v }
        if let v = eta, v != 0, m != .dps {
            throw JobError.manifest("solver.eta: only eta = 0 (deterministic DDIM) is supported for \(methodName)", field: "solver.eta")
        }
        if earlyStop == false { p.discrepancyTau = nil; p.plateau = nil }
        if let v = discrepancyTau { p.discrepancyTau = v }
        if let v = plateau { p.plateau = v }
        if let v = zPrior { p.zPrior = v }
        if let v = pgdSteps { p.pgdSteps = v }
        if let v = pgdForm.flatMap(PGDForm.init(rawValue:)) { p.pgdForm = v }
        if let v = pgdFinalDataStep { p.pgdFinalDataStep = v }
        if let v = dpsZeta { p.dpsZeta = v }
        if let v = baselineMu { p.baselineMu = v }
        if let v = layerSpan { p.layerSpan = v }
        if let v = samples {
            // an optimiser's restarts spread by where they start, not by the posterior: refused, not mislabelled
            guard v == 1 || m.isPosteriorSampler else {
                throw JobError.manifest(
                    "solver.samples: \(v) samples need a posterior sampler (dps or daps); \(methodName) " + "is an optimiser whose restarts would not measure uncertainty", field: "solver.samples")
            }
            p.samples = v
        }
        if let v = annealingSteps { p.annealingSteps = v }
        if let v = odeSteps { p.odeSteps = v }
        if let v = mcmcSteps { p.mcmcSteps = v }
        if let v = mcmcStep { p.mcmcStep = v }
        if let v = mcmcStepMinRatio { p.mcmcStepMinRatio = v }
        if let v = dapsSigmaMin { p.dapsSigmaMin = v }
        if let v = dapsLikelihood { p.dapsExactLikelihood = v == "exact" }
        if let v = dapsFinalMean { p.dapsFinalMean = v }
        if let v = dapsDataStd { p.dapsDataStd = v }
        p.budget = min(budget ?? maxBudget, maxBudget)
        if let given = budget, outer == nil, m == .dmilo || m == .dmiloPGD {
            // A job that names its budget but not `outer` gets the outer iterations that budget pays for: a 4×
            // budget means 4× the sweeps (the stopping rule may end them sooner), not the default count again.
            let perOuter = p.steps * p.inner + p.steps  // one sweep (span 1) and its re-simulation
            p.outer = max(p.outer, (min(given, maxBudget) - p.steps) / max(perOuter, 1))
        }
        p.seed = seed
        return p
    }
}
