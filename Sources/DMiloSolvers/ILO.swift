import DMiloKernels
import DMiloModel
import DMiloOperators

/// Intermediate-layer optimisation over the DDIM composition G = g_1 ∘ … ∘ g_N (docs/algorithms.md §3), shared by
/// DMILO and DMILO-PGD. State: latents L[0…K] and sparse deviations ν[0…K−1], K = number of layers
/// (each layer spans `layerSpan` DDIM steps; span 1 is the paper's DMILO).
final class ILOState {
    let layers: [DDIMSpan]
    let replicas: [any NoisePredictor]
    var latents: [Tensor]
    var nu: [Tensor]

    /// L[0] ~ N(0, I) from the job seed (or `params.initialNoise`), then a no-grad forward pass L[i+1] = S_i(L[i]); ν = 0.
    init(problem: InverseProblem, params: SolverParameters, replicas: [any NoisePredictor], counter: EvaluationCounter) throws {
        let grid = DDIMGrid.dmilo(steps: params.steps, trainSteps: problem.schedule.trainSteps)
        let chain = DDIMStep.chain(grid: grid, trainSteps: problem.schedule.trainSteps, schedule: problem.schedule)
        let span = max(1, min(params.layerSpan, chain.count))
        layers = stride(from: 0, to: chain.count, by: span).map { DDIMSpan(steps: Array(chain[$0..<min($0 + span, chain.count)])) }
        self.replicas = replicas
        let shape = problem.op.inputShape
        var rng = SeededRandom(seed: params.seed, stream: "ilo-initial-noise")
        var l: [Tensor] = [params.initialNoise.map { Tensor(shape: shape, values: $0) } ?? rng.gaussianTensor(shape: shape)]
        for layer in layers { l.append(try layer.forward(l.last!, model: replicas[0], counter: counter)) }
        latents = l
        nu = layers.map { _ in Tensor(shape: shape) }
    }

    /// UNet evaluations one inner iteration of layer `idx` costs.
    func innerCost(_ idx: Int) -> Int { layers[idx].steps.count }
    /// UNet evaluations of one forward re-simulation.
    var resimulationCost: Int { layers.reduce(0) { $0 + $1.steps.count } }

    /// The backward sweep (§3 step 2): layers from the image side (idx K−1, with operator A and target `y`) to the
    /// noise side (identity, target = the input just optimised in the layer above). Each layer runs `inner` Adam
    /// steps on
    ///     mean((B(S(z) + ν) − target)²) + λ·mean|ν| + zPrior·mean(z²)
    /// with a fresh Adam (groups ν: lrNu, z: lrZ), warm-started from the current z = L[idx] and ν[idx].
    /// Returns how it ended: all layers swept, or stopped early by the budget, a cancellation, or the discrepancy
    /// principle (whose image, the image-side layer's current output, it carries).
    func sweep(
        target y: Tensor, problem: InverseProblem, params: SolverParameters, counter: EvaluationCounter,
        reserve: Int, progress: (_ note: String, _ inner: Int) -> Bool
    ) throws -> SweepEnd {
        var target = y
        // the discrepancy principle's bound τ·σ·√m on ‖y − A(x)‖, checked at every inner step of the image-side layer
        let bound = problem.discrepancyBound(tau: params.discrepancyTau)
        for idx in stride(from: layers.count - 1, through: 0, by: -1) {
            let useOperator = idx == layers.count - 1
            let z = latents[idx].copy(), v = nu[idx].copy()
            let adam = Adam(params: [v, z], learningRates: [params.lrNu, params.lrZ])
            let n = Float(z.count)
            for it in 0..<params.inner {
                guard counter.allows(innerCost(idx) + reserve) else { latents[idx] = z; nu[idx] = v; return .budget }
                let (s, saved) = try layers[idx].forwardWithTapes(z, model: replicas[0], counter: counter, replicas: replicas)
                s.axpy(1, v)  // u = S(z) + ν
                // d/du mean(r²) = (2/m)·J_Bᵀ r, r = B(u) − target
                let gu: Tensor
                if useOperator {
                    let r = problem.op.apply(s)
                    if let bound, problem.residualNorm(s, prediction: r) <= bound {
                        // u = S(z) + ν already explains y to the noise level: it is the image; stop here
                        latents[idx] = z; nu[idx] = v
                        Vec.clamp(s.count, s.data, -1, 1)
                        return .discrepancy(s)
                    }
                    r.axpy(-1, target)
                    let c = r; c.scale(by: 2 / Float(r.count))
                    gu = problem.op.vjp(at: s, cotangent: c)
                } else {
                    let r = s; r.axpy(-1, target)
                    r.scale(by: 2 / Float(r.count))
                    gu = r
                }
                let gz = try layers[idx].vjp(gu, saved: saved, replicas: replicas)
                gz.axpy(2 * Float(params.zPrior) / n, z)  // ∇ zPrior·mean(z²)
                let gv = gu
                let l1 = Float(params.lambda) / n  // ∇ λ·mean|ν| (sign, 0 at 0 like torch)
                for i in 0..<v.count { gv[i] += v[i] > 0 ? l1 : (v[i] < 0 ? -l1 : 0) }
                adam.update(gradients: [gv, gz])
                if it % 10 == 0, !progress("layer \(idx + 1)/\(layers.count) step \(it + 1)/\(params.inner)", it + 1) {
                    latents[idx] = z; nu[idx] = v; return .cancelled
                }
            }
            latents[idx] = z
            nu[idx] = v
            target = z
        }
        return .finished
    }

    enum SweepEnd {
        case finished, budget, cancelled
        case discrepancy(Tensor)
    }

    /// Forward re-simulation (§3 step 3–4): L[i+1] = S_i(L[i]) + ν[i]; returns clamp(L[K], −1, 1), the current image
    /// (it includes the last layer's deviation ν, as in the official code).
    func resimulate(counter: EvaluationCounter) throws -> Tensor {
        for (i, layer) in layers.enumerated() {
            let out = try layer.forward(latents[i], model: replicas[0], counter: counter)
            out.axpy(1, nu[i])
            latents[i + 1] = out
        }
        let x = latents.last!.copy()
        Vec.clamp(x.count, x.data, -1, 1)
        latents[latents.count - 1] = x
        return x
    }

    /// One outer iteration's projection, shared by DMILO (target y) and DMILO-PGD (target A(X)): the backward sweep,
    /// the forward re-simulation, and the stop decision (cancelled, budget spent, or the discrepancy principle met).
    func project(
        target: Tensor, iteration t: Int, problem: InverseProblem, params p: SolverParameters,
        counter: EvaluationCounter, residual: Double?, progress: ProgressHandler
    ) throws -> (x: Tensor, stop: StopReason?) {
        let end = try sweep(
            target: target, problem: problem, params: p, counter: counter,
            reserve: resimulationCost
        ) { note, inner in
            progress(
                SolverProgress(
                    method: p.method, stage: note, iteration: t, iterations: p.outer,
                    unetEvaluations: counter.count, budget: p.budget, inner: inner,
                    residual: residual))
        }
        if case .discrepancy(let image) = end { return (image, .discrepancy) }
        let x = try resimulate(counter: counter)
        if case .cancelled = end { return (x, .cancelled) }
        if case .budget = end { return (x, .budget) }
        if problem.meetsDiscrepancy(x, tau: p.discrepancyTau) { return (x, .discrepancy) }
        return (x, nil)
    }

    /// The outer loop of both ILO methods: `target(&x, t)` returns what iteration t's projection fits (y for DMILO;
    /// A(X) after a gradient step on X for DMILO-PGD), then `project` replaces X by the projected image.
    func iterate(
        from start: Tensor, problem: InverseProblem, params p: SolverParameters, counter: EvaluationCounter,
        progress: ProgressHandler, observer: IterateObserver?,
        target: (inout Tensor, Int) throws -> Tensor
    ) throws -> SolverResult {
        var x = start
        var history: [Double] = []
        var stop = StopReason.iterations
        var done = 0
        for t in 1...max(p.outer, 1) {
            let goal = try target(&x, t)
            let step = try project(
                target: goal, iteration: t, problem: problem, params: p, counter: counter,
                residual: history.last, progress: progress)
            x = step.x
            done = t
            history.append(problem.relativeResidual(x))
            observer?(x, counter.count)
            if let s = step.stop { stop = s; break }
            if let rho = p.plateau, problem.noiseSigma > 0, history.count >= 2, t < p.outer {
                let (before, now) = (history[history.count - 2], history[history.count - 1])
                if before - now < rho * before { stop = .plateau; break }  // the sweeps no longer buy data fit
            }
        }
        return SolverResult(
            x: x, unetEvaluations: counter.count, outerIterations: done, stoppedBy: stop,
            residualHistory: history)
    }

    /// The start both ILO methods share: the evaluation counter, the minimum budget (one sweep of N layers plus the
    /// forward re-simulation: 2N evaluations), and the layer state with its seeded latents.
    static func begin(
        _ p: SolverParameters, problem: InverseProblem, replicas: [any NoisePredictor],
        method: String
    ) throws -> (ILOState, EvaluationCounter) {
        let counter = EvaluationCounter(budget: p.budget, monitor: problem.monitor)
        try requireBudget(p, counter: counter, minimum: 2 * p.steps, method: method)
        return (try ILOState(problem: problem, params: p, replicas: replicas, counter: counter), counter)
    }
}
