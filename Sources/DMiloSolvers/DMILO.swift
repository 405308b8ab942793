import DMiloKernels
import DMiloModel

/// DMILO (Zheng, Li & Liu, ICML 2025; docs/algorithms.md §3): intermediate-layer optimisation of the DDIM composition with
/// sparse deviations. Each outer iteration sweeps the layers from the image side (fit A(g_1(x) + ν) to y) to the noise
/// side (fit g_i(x) + ν to the latent just found above), then re-simulates forward. Memory is one layer's VJP.
enum DMILOSolver {
    static func solve(
        _ p: SolverParameters, problem: InverseProblem, replicas: [any NoisePredictor],
        progress: ProgressHandler, observer: IterateObserver?
    ) throws -> SolverResult {
        let (state, counter) = try ILOState.begin(p, problem: problem, replicas: replicas, method: "dmilo")
        let x = state.latents.last!.copy()
        Vec.clamp(x.count, x.data, -1, 1)
        return try state.iterate(
            from: x, problem: problem, params: p, counter: counter, progress: progress,
            observer: observer
        ) { _, _ in problem.y }
    }
}

/// Refuses budgets too small to produce any image (`budget.exceeded`).
func requireBudget(_ p: SolverParameters, counter: EvaluationCounter, minimum: Int, method: String) throws {
    guard counter.allows(minimum) else {
        throw SolverError(
            code: "budget.exceeded",
            message: "\(method) needs at least \(minimum) UNet evaluations with \(p.steps) DDIM steps; the budget is \(p.budget)")
    }
}
