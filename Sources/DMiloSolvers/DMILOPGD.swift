import DMiloKernels
import DMiloModel
import DMiloOperators

/// DMILO-PGD (docs/algorithms.md §4): alternate a gradient step on the data fidelity with a projection onto the range of
/// the DDIM composition that uses A itself: the DMILO sweep with target A(X) instead of y. X starts at zero.
enum DMILOPGDSolver {
    static func solve(
        _ p: SolverParameters, problem: InverseProblem, replicas: [any NoisePredictor],
        progress: ProgressHandler, observer: IterateObserver?
    ) throws -> SolverResult {
        let (state, counter) = try ILOState.begin(p, problem: problem, replicas: replicas, method: "dmilo-pgd")
        let lrX = try stepSize(p, op: problem.op)
        let x = Tensor(shape: problem.op.inputShape)  // X₀ = 0 (docs/algorithms.md §4)
        return try state.iterate(
            from: x, problem: problem, params: p, counter: counter, progress: progress,
            observer: observer
        ) { x, _ in
            dataStep(&x, problem: problem, form: p.pgdForm, steps: p.pgdSteps, lr: lrX)
            observer?(x, counter.count)
            return problem.op.apply(x)  // project using A: fit A(G(z)) to A(X)
        }
    }

    /// lr_x: given, or 0.5/‖A‖² for linear operators with the squared form (see `SolverParameters.lrX`).
    static func stepSize(_ p: SolverParameters, op: any MeasurementOperator) throws -> Double {
        if let lr = p.lrX { return lr }
        guard op.isLinear, p.pgdForm == .squared else { return 0.1 }
        let norm = try OperatorNorm.estimate(op)
        return 0.5 / max(norm * norm, 1e-12)
    }

    /// Gradient step(s) on the data fidelity (§4 step 1):
    ///  squared:   X ← clamp(X − lr·∇‖A(clamp X) − y‖²), one step (clamp inside: zero gradient where |X| > 1)
    ///  unsquared: `steps` times X ← clamp(X − lr·∇‖A(X) − y‖), ∇ = J_Aᵀ r/‖r‖ (a fixed-length step)
    static func dataStep(_ x: inout Tensor, problem: InverseProblem, form: PGDForm, steps: Int, lr: Double) {
        switch form {
        case .squared:
            let xc = x.copy()
            Vec.clamp(xc.count, xc.data, -1, 1)
            let r = problem.op.apply(xc)
            r.axpy(-1, problem.y)
            r.scale(by: 2)
            let g = problem.op.vjp(at: xc, cotangent: r)
            for i in 0..<x.count where x[i] >= -1 && x[i] <= 1 { x[i] -= Float(lr) * g[i] }
            Vec.clamp(x.count, x.data, -1, 1)
        case .unsquared:
            for _ in 0..<max(steps, 1) {
                let r = problem.op.apply(x)
                r.axpy(-1, problem.y)
                let nr = r.norm
                guard nr > 0 else { break }
                r.scale(by: Float(1 / nr))
                let g = problem.op.vjp(at: x, cotangent: r)
                x.axpy(-Float(lr), g)
                Vec.clamp(x.count, x.data, -1, 1)
            }
        }
    }
}
