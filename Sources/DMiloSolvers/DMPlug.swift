import DMiloKernels
import DMiloModel

/// DMPlug (Wang et al., NeurIPS 2024; docs/algorithms.md §2): optimise the initial noise Z through the WHOLE sampler,
/// x(Z) = clamp(G(Z)) on the [666, 333, 0] grid, with Adam on mean((A(x(Z)) − y)²). Every iteration keeps all N
/// steps' activations (one replica per step), so memory grows with N — the cost DMILO removes.
enum DMPlugSolver {
    /// `inner` is the number of Adam iterations (the official 5,000 does not fit a CPU budget).
    static func solve(
        _ p: SolverParameters, problem: InverseProblem, replicas: [any NoisePredictor],
        progress: ProgressHandler, observer: IterateObserver?
    ) throws -> SolverResult {
        let counter = EvaluationCounter(budget: p.budget, monitor: problem.monitor)
        try requireBudget(p, counter: counter, minimum: 2 * p.steps, method: "dmplug")
        let grid = DDIMGrid.dmplug(steps: p.steps, trainSteps: problem.schedule.trainSteps)
        let sampler = DDIMSpan(steps: DDIMStep.chain(grid: grid, trainSteps: problem.schedule.trainSteps, schedule: problem.schedule))
        var rng = SeededRandom(seed: p.seed, stream: "dmplug-initial-noise")
        let z = p.initialNoise.map { Tensor(shape: problem.op.inputShape, values: $0) } ?? rng.gaussianTensor(shape: problem.op.inputShape)
        let adam = Adam(params: [z], learningRates: [p.lrZ])
        let observeEvery = max(1, p.inner / max(p.outer, 1))
        var history: [Double] = []
        var stop = StopReason.iterations
        var iterations = 0
        for it in 0..<p.inner {
            guard counter.allows(2 * p.steps) else { stop = .budget; break }  // keep N for the final image
            let (x, saved) = try sampler.forwardWithTapes(z, model: replicas[0], counter: counter, replicas: replicas)
            let xc = x.copy()
            Vec.clamp(xc.count, xc.data, -1, 1)
            let r = problem.op.apply(xc)
            r.axpy(-1, problem.y)
            r.scale(by: 2 / Float(r.count))
            let gx = problem.op.vjp(at: xc, cotangent: r)
            for i in 0..<gx.count where x[i] < -1 || x[i] > 1 { gx[i] = 0 }  // clamp subgradient
            let gz = try sampler.vjp(gx, saved: saved, replicas: replicas)
            adam.update(gradients: [gz])
            iterations = it + 1
            if iterations % observeEvery == 0 {
                history.append(problem.relativeResidual(xc))
                observer?(xc, counter.count)
                if problem.meetsDiscrepancy(xc, tau: p.discrepancyTau) { stop = .discrepancy; break }
            }
            if it % 5 == 0,
                !progress(
                    SolverProgress(
                        method: .dmplug, stage: "iteration \(it + 1)/\(p.inner)",
                        iteration: it + 1, iterations: p.inner,
                        unetEvaluations: counter.count, budget: p.budget,
                        inner: it + 1, residual: history.last))
            {
                stop = .cancelled; break
            }
        }
        let x = try sampler.forward(z, model: replicas[0], counter: counter)
        Vec.clamp(x.count, x.data, -1, 1)
        history.append(problem.relativeResidual(x))
        return SolverResult(
            x: x, unetEvaluations: counter.count, outerIterations: iterations, stoppedBy: stop,
            residualHistory: history)
    }
}
