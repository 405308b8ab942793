import DMiloKernels
import DMiloModel
import DMiloOperators

/// DMILO (Zheng, Li & Liu, ICML 2025; docs/algorithms.md §3): intermediate-layer optimisation of the DDIM composition with
/// sparse deviations. Each outer iteration sweeps the layers from the image side (fit A(g_1(x) + ν) to y) to the noise
/// side (fit g_i(x) + ν to the latent just found above), then re-simulates forward. Memory is one layer's VJP.
enum DMILOSolver {
    static func solve(_ p: SolverParameters, problem: InverseProblem, replicas: [any NoisePredictor],
                      progress: ProgressHandler, observer: IterateObserver?) throws -> SolverResult {
        let counter = EvaluationCounter(budget: p.budget)
        try requireBudget(p, counter: counter, minimum: 2 * p.steps, method: "dmilo")
        let state = try ILOState(problem: problem, params: p, replicas: replicas, counter: counter)
        var x = state.latents.last!.copy()
        Vec.clamp(x.count, x.data, -1, 1)
        var history: [Double] = []
        var stop = StopReason.iterations
        var done = 0
        for t in 1...max(p.outer, 1) {
            let step = try state.project(target: problem.y, iteration: t, problem: problem, params: p, counter: counter,
                                         progress: progress)
            x = step.x
            done = t
            history.append(problem.relativeResidual(x))
            observer?(x, counter.count)
            if let s = step.stop { stop = s; break }
        }
        return SolverResult(x: x, unetEvaluations: counter.count, outerIterations: done, stoppedBy: stop,
                            residualHistory: history)
    }
}

/// Refuses budgets too small to produce any image (`budget.exceeded`).
func requireBudget(_ p: SolverParameters, counter: EvaluationCounter, minimum: Int, method: String) throws {
    guard counter.allows(minimum) else {
        throw SolverError(code: "budget.exceeded",
                          message: "\(method) needs at least \(minimum) UNet evaluations with \(p.steps) DDIM steps; the budget is \(p.budget)")
    }
}
