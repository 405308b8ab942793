import DMiloKernels
import DMiloModel
import DMiloOperators

/// Reconstruction methods (docs/INTERFACE.md manifest `solver.method`).
public enum SolverMethod: String, CaseIterable, Sendable {
    case dmiloPGD = "dmilo-pgd"
    case dmilo
    case dmplug
    case dps
    /// Decoupled annealing posterior sampling: UNet forward passes only.
    case daps
    case baseline

    /// Posterior samplers: their K chains (`samples`) are draws whose spread is an uncertainty. The others are
    /// optimisers; the spread of their restarts is not a posterior spread, so they run one chain.
    public var isPosteriorSampler: Bool { self == .dps || self == .daps }
}

/// How DMILO-PGD takes its gradient step on the data fidelity (docs/algorithms.md §4 step 1).
public enum PGDForm: String, Sendable {
    /// One step on ‖A(clamp X) − y‖² (inpainting, super-resolution in the official code).
    case squared
    /// `pgdSteps` fixed-length steps on ‖A(X) − y‖ with a clamp after each (blurs, nonlinear operators).
    case unsquared
    /// Linear operators: accelerated projected gradient (FISTA) on ‖A(X) − y‖² over the box [−1, 1], from the
    /// projected iterate, with the step 1/L, L = 2‖A‖², for at most `pgdSteps` iterations, stopped by the
    /// discrepancy principle ‖A(X) − y‖ ≤ σ·√m when σ > 0. Its first iteration is the official squared step
    /// (lr = 0.5/‖A‖²), which already solves masks and box down-sampling (AAᵀ = c·I); a dense CS matrix or a
    /// blur, whose other singular values that step barely moves, gets the iterations it needs. The box keeps the
    /// background at −1 where an unconstrained least-squares step would ring; stopping at the noise level keeps an
    /// ill-conditioned blur from fitting noise.
    case accelerated
}

/// Every knob of every solver. Defaults come from `SolverDefaults`; a manifest may override some.
public struct SolverParameters: Sendable, Equatable {
    public var method: SolverMethod
    /// DDIM steps N (the number of ILO layers when `layerSpan` = 1).
    public var steps = 3
    /// Outer iterations T: ILO sweeps; DMPlug: checkpoints (the iterate is observed and the discrepancy principle
    /// checked every inner/outer iterations); DPS: unused.
    public var outer = 5
    /// Inner Adam iterations per layer per sweep (DMPlug: total iterations).
    public var inner = 100
    /// Adam learning rate of the layer inputs z (DMPlug: of the initial noise).
    public var lrZ = 1e-2
    /// Adam learning rate of the sparse deviations ν.
    public var lrNu = 1e-3
    /// DMILO-PGD gradient step size on the data fidelity. nil = 0.5/‖A‖² for the squared form: the official values
    /// (inpainting 0.5 with ‖A‖ = 1, SR×4 8 with ‖A‖² = 1/16) are exactly this rule, which then carries over to any
    /// linear operator (SR×2 → 2, CS → 0.5/σ_max²). Required for the unsquared form.
    public var lrX: Double? = nil
    /// Weight λ of mean|ν| (the l1 sparsity of the deviations).
    public var lambda = 0.1
    /// Weight of the hidden mean(z²) prior on each layer input (docs/algorithms.md §8 pitfall 4).
    public var zPrior = 1e-4
    public var pgdForm = PGDForm.squared
    public var pgdSteps = 1
    /// DMILO-PGD: return the last projection followed by one more data step (X_{T+1}'s gradient half, §4 step 1)
    /// instead of the bare projection. The projection onto a 3-step sampler's range loses detail the data step
    /// restores (docs/algorithms.md §4).
    public var pgdFinalDataStep = false
    /// DPS: number of sampling steps (manifest `dps_steps`) and guidance scale ζ.
    public var dpsSteps = 200
    public var dpsZeta = 1.0
    /// Posterior samplers (DPS, DAPS): independent chains K; the result is their mean (docs/INTERFACE.md `samples`).
    public var samples = 1
    /// DAPS (docs/algorithms.md "DAPS"): annealing levels, DDIM steps of each level's ODE, Langevin steps per level,
    /// the Langevin step δ as a fraction of 1/L (L the curvature of the level's potential), decaying linearly to
    /// δ·`mcmcStepMinRatio` over the annealing.
    public var annealingSteps = 100
    public var odeSteps = 5
    public var mcmcSteps = 100
    public var mcmcStep = 1.0
    public var mcmcStepMinRatio = 0.01
    /// DAPS: σ of the last annealing level (model units); the likelihood step: Langevin (any operator) or the
    /// exact Gaussian conditional by CG (`GaussianConditional`, linear operators; `mcmcSteps` = CG iterations);
    /// whether the last level returns the conditional mean instead of a draw.
    public var dapsSigmaMin = 0.1
    public var dapsExactLikelihood = false
    public var dapsFinalMean = false
    /// DAPS: the std r_t of the Gaussian p(x0 | x_t) ≈ N(x̂0, r_t²). 0: r_t = σ_t (the paper's choice); s > 0: the
    /// posterior std of x0 under a N(·, s²) prior seen through noise σ_t, r_t = σ_t·s / √(σ_t² + s²) (≤ both).
    public var dapsDataStd = 0.0
    /// Baseline: smoothness weight μ of the Tikhonov term (nil = chosen from σ).
    public var baselineMu: Double? = nil
    /// Cap on UNet forward evaluations (a VJP is counted through its forward).
    public var budget = Int.max
    /// Discrepancy principle: stop once ‖y − A(x)‖ ≤ τ·σ·√m (nil = off; needs σ > 0). ILO methods check it at
    /// every inner step of the image-side layer and after each re-simulation; DMPlug after each checkpoint.
    public var discrepancyTau: Double? = nil
    /// Residual plateau (ILO methods): stop after an outer iteration whose projection's ‖y − A(x)‖/‖y‖ fell by less
    /// than this fraction of the previous one's (nil = off). Ground-truth free; like the discrepancy rule it is
    /// only applied to noisy measurements (σ > 0): a noise-free job runs its budget.
    public var plateau: Double? = nil
    /// DDIM steps per ILO layer (1 = DMILO; N = one layer spanning the whole sampler, DMPlug-like memory).
    public var layerSpan = 1
    public var seed: UInt64 = 0
    /// The initial latent (DMILO/DMILO-PGD: L[0]; DMPlug: Z) in C order, instead of the draw from `seed`. Only for
    /// cross-checks against another implementation fed the same noise (`dmilo reconstruct --initial-noise`,
    /// Tools/compare_reference.py); manifests cannot set it.
    public var initialNoise: [Float]? = nil

    public init(method: SolverMethod) { self.method = method }
}

/// One inverse problem y = A(x) + n with a diffusion prior.
public struct InverseProblem {
    public var model: any NoisePredictor
    public var schedule: NoiseSchedule
    public var op: any MeasurementOperator
    public var y: Tensor
    public var noiseSigma: Double
    /// Sees every UNet evaluation the solver counts (progress reports, cancellation); nil = nobody watches.
    public var monitor: (any EvaluationMonitor)?

    public init(
        model: any NoisePredictor, schedule: NoiseSchedule, op: any MeasurementOperator, y: Tensor, noiseSigma: Double,
        monitor: (any EvaluationMonitor)? = nil
    ) {
        self.model = model
        self.schedule = schedule
        self.op = op
        self.y = y
        self.noiseSigma = noiseSigma
        self.monitor = monitor
    }

    /// ‖y − A(x)‖; `prediction`: A(x) when the caller has it already.
    func residualNorm(_ x: Tensor, prediction: Tensor? = nil) -> Double {
        let a = prediction ?? op.apply(x)
        return Vec.distance(a.count, a.data, y.data)
    }

    /// ‖y − A(x)‖ / ‖y‖ (the `residual` of metrics.json).
    public func relativeResidual(_ x: Tensor) -> Double {
        let ny = y.norm
        return ny > 0 ? residualNorm(x) / ny : residualNorm(x)
    }

    /// The discrepancy principle's bound τ·σ·√m on ‖y − A(x)‖ (m = measurement size); nil when τ is nil or σ = 0.
    func discrepancyBound(tau: Double?) -> Double? {
        guard let tau, noiseSigma > 0 else { return nil }
        return tau * noiseSigma * Double(y.count).squareRoot()
    }

    /// True when the discrepancy principle says x explains y down to the noise level.
    func meetsDiscrepancy(_ x: Tensor, tau: Double?) -> Bool {
        guard let bound = discrepancyBound(tau: tau) else { return false }
        return residualNorm(x) <= bound
    }
}

/// Why a solver stopped.
public enum StopReason: String, Sendable {
    case iterations, budget, discrepancy, plateau, cancelled
}

/// A progress report; the callback returns false to cancel (the solver then stops and returns its current iterate).
public struct SolverProgress: Sendable {
    public var method: SolverMethod
    public var stage: String
    /// Outer iteration (1-based) and count.
    public var iteration: Int
    public var iterations: Int
    public var unetEvaluations: Int
    public var budget: Int
    /// Inner iteration (1-based) within the outer one: ILO's Adam step of the current layer; DMPlug's and DPS's
    /// iteration is their only loop, so it is `iteration` again.
    public var inner = 0
    /// The latest ‖y − A(x)‖/‖y‖ the solver computed (nil before the first); never computed just to report it.
    public var residual: Double? = nil
}

public typealias ProgressHandler = (SolverProgress) -> Bool
/// Sees every outer iterate (the benchmark computes its "oracle" best-PSNR figure from it; solvers never see the truth).
public typealias IterateObserver = (_ x: Tensor, _ unetEvaluations: Int) -> Void

/// A solver's answer: its LAST iterate (clamped to [-1, 1]), never a truth-selected one.
public struct SolverResult {
    public var x: Tensor
    public var unetEvaluations: Int
    public var outerIterations: Int
    public var stoppedBy: StopReason
    /// ‖y − A(x)‖/‖y‖ after each outer iteration.
    public var residualHistory: [Double]
    /// The chains' samples (posterior samplers; `x` is their mean), else empty.
    public var samples: [Tensor] = []
    /// UNet input-VJPs (batch items), counted by `Solvers.run`.
    public var unetVJPEvaluations = 0
}

public struct SolverError: Error, CustomStringConvertible, Sendable {
    /// Stable code for error.json (`memory.budget`, `budget.exceeded`, `solver.invalid`).
    public var code: String
    public var message: String
    public init(code: String, message: String) { self.code = code; self.message = message }
    public var description: String { message }
}

/// Watches a running solver from outside. Every method counts its UNet evaluations through ``EvaluationCounter``,
/// so the counter is the one place where a job's progress is seen and where it can be stopped mid-iteration.
public protocol EvaluationMonitor: AnyObject {
    /// Called after each counted evaluation with the running total. Runs once per UNet evaluation, so it must be
    /// cheap (no file-system access per call). Throwing stops the solver: the error leaves `Solvers.run` as is.
    func evaluated(total: Int, budget: Int) throws
}

/// Counts UNet forward passes and enforces the budget; reports each count to the problem's monitor.
final class EvaluationCounter {
    let budget: Int
    private(set) var count = 0
    private let monitor: (any EvaluationMonitor)?
    init(budget: Int, monitor: (any EvaluationMonitor)? = nil) {
        self.budget = budget
        self.monitor = monitor
    }
    func add(_ n: Int) throws {
        count += n
        try monitor?.evaluated(total: count, budget: budget)
    }
    /// True when `n` more evaluations fit.
    func allows(_ n: Int) -> Bool { count + n <= budget }
    /// Evaluations left.
    var remaining: Int { budget - count }
}
