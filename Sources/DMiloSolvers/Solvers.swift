import DMiloKernels
import DMiloModel

/// Entry point: runs one method on one problem.
public enum Solvers {
    /// - Parameters:
    ///   - makeReplica: builds another predictor sharing the model's weights with its own activation workspace; needed
    ///     when more than one tape must live at once (DMPlug, ILO layers spanning several steps).
    public static func run(
        _ p: SolverParameters, problem: InverseProblem,
        makeReplica: (() throws -> any NoisePredictor)? = nil,
        progress: ProgressHandler = { _ in true }, observer: IterateObserver? = nil
    ) throws -> SolverResult {
        guard p.steps >= 1, p.outer >= 1, p.inner >= 1, p.budget >= 0 else {
            throw SolverError(code: "solver.invalid", message: "steps, outer and inner must be ≥ 1")
        }
        guard p.samples >= 1, p.samples == 1 || p.method.isPosteriorSampler else {
            throw SolverError(code: "solver.invalid", message: "samples > 1 needs a posterior sampler (dps, daps), not \(p.method.rawValue)")
        }
        guard p.annealingSteps >= 1, p.odeSteps >= 1, p.mcmcSteps >= 0 else {
            throw SolverError(code: "solver.invalid", message: "annealing_steps and ode_steps must be ≥ 1, mcmc_steps ≥ 0")
        }
        guard problem.y.count == problem.op.outputShape.reduce(1, *) else {
            throw SolverError(code: "measurement.shape", message: "y has \(problem.y.count) values, A produces \(problem.op.outputShape)")
        }
        if let n = p.initialNoise, n.count != problem.op.inputShape.reduce(1, *) {
            throw SolverError(code: "solver.invalid", message: "the initial noise has \(n.count) values, the image \(problem.op.inputShape)")
        }
        let needed: Int
        switch p.method {
        case .dmplug: needed = p.steps
        case .dmilo, .dmiloPGD: needed = max(1, min(p.layerSpan, p.steps))
        // DAPS: one replica per core for groups of chains (DAPSSolver), when replicas can be made
        case .daps: needed = makeReplica == nil ? 1 : max(1, min(p.samples, Threading.count))
        default: needed = 1
        }
        let tally = VJPCountingPredictor.Tally()
        var counted = problem
        counted.model = VJPCountingPredictor(problem.model, tally: tally)
        var replicas: [any NoisePredictor] = [counted.model]
        while replicas.count < needed {
            guard let makeReplica else {
                throw SolverError(code: "solver.invalid", message: "\(p.method.rawValue) needs \(needed) model replicas; none can be made")
            }
            replicas.append(VJPCountingPredictor(try makeReplica(), tally: tally))
        }
        var result: SolverResult
        switch p.method {
        case .dmilo: result = try DMILOSolver.solve(p, problem: counted, replicas: replicas, progress: progress, observer: observer)
        case .dmiloPGD: result = try DMILOPGDSolver.solve(p, problem: counted, replicas: replicas, progress: progress, observer: observer)
        case .dmplug: result = try DMPlugSolver.solve(p, problem: counted, replicas: replicas, progress: progress, observer: observer)
        case .dps, .daps: result = try PosteriorChains.run(p, problem: counted, replicas: replicas, progress: progress, observer: observer)
        case .baseline: result = try BaselineSolver.solve(p, problem: counted)
        }
        result.unetVJPEvaluations = tally.vjps
        return result
    }
}
