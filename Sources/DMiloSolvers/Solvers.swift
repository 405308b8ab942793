import DMiloModel

/// Entry point: runs one method on one problem.
public enum Solvers {
    /// - Parameters:
    ///   - makeReplica: builds another predictor sharing the model's weights with its own activation workspace; needed
    ///     when more than one tape must live at once (DMPlug, ILO layers spanning several steps).
    public static func run(_ p: SolverParameters, problem: InverseProblem,
                           makeReplica: (() throws -> any NoisePredictor)? = nil,
                           progress: ProgressHandler = { _ in true }, observer: IterateObserver? = nil) throws -> SolverResult {
        guard p.steps >= 1, p.outer >= 1, p.inner >= 1, p.budget >= 0 else {
            throw SolverError(code: "solver.invalid", message: "steps, outer and inner must be ≥ 1")
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
        default: needed = 1
        }
        var replicas: [any NoisePredictor] = [problem.model]
        while replicas.count < needed {
            guard let makeReplica else {
                throw SolverError(code: "solver.invalid", message: "\(p.method.rawValue) needs \(needed) model replicas; none can be made")
            }
            replicas.append(try makeReplica())
        }
        switch p.method {
        case .dmilo: return try DMILOSolver.solve(p, problem: problem, replicas: replicas, progress: progress, observer: observer)
        case .dmiloPGD: return try DMILOPGDSolver.solve(p, problem: problem, replicas: replicas, progress: progress, observer: observer)
        case .dmplug: return try DMPlugSolver.solve(p, problem: problem, replicas: replicas, progress: progress, observer: observer)
        case .dps: return try DPSSolver.solve(p, problem: problem, model: problem.model, progress: progress, observer: observer)
        case .baseline: return try BaselineSolver.solve(p, problem: problem)
        }
    }
}
