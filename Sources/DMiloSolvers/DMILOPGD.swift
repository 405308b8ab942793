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
        var result = try state.iterate(
            from: x, problem: problem, params: p, counter: counter, progress: progress,
            observer: observer
        ) { x, _ in
            dataStep(&x, problem: problem, form: p.pgdForm, steps: p.pgdSteps, lr: lrX)
            // ↑ X ← argmin-ward step on ‖A(X) − y‖ (§4 step 1); ↓ the projection fits A(G(z)) to A(X) (§4 step 2)
            observer?(x, counter.count)
            return problem.op.apply(x)  // project using A: fit A(G(z)) to A(X)
        }
        if p.pgdFinalDataStep, result.stoppedBy != .cancelled {
            // X_{T+1} before its projection: the last projection moved to the data (no UNet evaluation)
            dataStep(&result.x, problem: problem, form: p.pgdForm, steps: p.pgdSteps, lr: lrX)
            result.residualHistory.append(problem.relativeResidual(result.x))
            observer?(result.x, counter.count)
        }
        return result
    }

    /// lr_x: given, or 0.5/‖A‖² for linear operators with the squared form (see `SolverParameters.lrX`).
    static func stepSize(_ p: SolverParameters, op: any MeasurementOperator) throws -> Double {
        if let lr = p.lrX { return lr }
        guard op.isLinear, p.pgdForm != .unsquared else { return 0.1 }
        let norm = try OperatorNorm.estimate(op)
        return 0.5 / max(norm * norm, 1e-12)
    }

    /// Gradient step(s) on the data fidelity (§4 step 1):
    ///  squared:   X ← clamp(X − lr·∇‖A(clamp X) − y‖²), one step (clamp inside: zero gradient where |X| > 1)
    ///  unsquared: `steps` times X ← clamp(X − lr·∇‖A(X) − y‖), ∇ = J_Aᵀ r/‖r‖ (a fixed-length step)
    ///  accelerated: box-constrained FISTA on ‖A(X) − y‖² from X with step lr = 1/L, ≤ `steps` iterations, stopped at
    ///              ‖A(X) − y‖ ≤ σ√m
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
        case .accelerated:
            let tol = problem.discrepancyBound(tau: 1) ?? 0  // σ = 0: no noise level to stop at
            boxFISTA(&x, op: problem.op, y: problem.y, lipschitz: 1 / max(lr, 1e-12), iterations: steps, tolerance: tol)
        }
    }

    /// FISTA (Beck & Teboulle 2009) on f(X) = ‖A X − y‖² over the box [−1, 1] from the given X: at most `iterations`
    /// steps X ← clamp(W − ∇f(W)/L) with Nesterov's momentum W = X + ((t−1)/t')(X − X_prev), stopping once
    /// ‖A X − y‖ ≤ `tolerance`. L = 2‖A‖² (`lipschitz`, from the operator norm) makes every step a descent step.
    static func boxFISTA(
        _ x: inout Tensor, op: any MeasurementOperator, y: Tensor, lipschitz: Double, iterations: Int, tolerance: Double
    ) {
        Vec.clamp(x.count, x.data, -1, 1)
        let w = x.copy()
        var t = 1.0
        for _ in 0..<max(iterations, 1) {
            let r = op.apply(w)
            r.axpy(-1, y)
            if r.norm <= tolerance {  // W explains y to the noise level: take it (it is in the box) and stop
                x = w
                return
            }
            r.scale(by: 2)
            let g = op.vjp(at: w, cotangent: r)  // ∇f(W) = 2Aᵀ(A W − y)
            let next = w.copy()
            next.axpy(-Float(1 / lipschitz), g)
            Vec.clamp(next.count, next.data, -1, 1)
            let tNext = (1 + (1 + 4 * t * t).squareRoot()) / 2
            let momentum = Float((t - 1) / tNext)
            for i in 0..<w.count { w[i] = next[i] + momentum * (next[i] - x[i]) }
            x = next
            t = tNext
        }
    }
}
