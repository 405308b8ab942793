import DMiloKernels
import DMiloModel

/// Diffusion Posterior Sampling (Chung et al., ICLR 2023), the classic baseline: ancestral sampling (DDIM with η = 1
/// on a grid of T steps) where every step is followed by a gradient step on the measurement residual of the
/// posterior-mean estimate x̂0(x_t):
///     x_{t−1} ← x'_{t−1} − ζ·∇_{x_t} ‖y − A(x̂0(x_t))‖,   x̂0 = (x_t − s_t ε_θ(x_t, t)) / a_t
/// (the un-squared norm, as in the official code). The gradient goes through the UNet's VJP.
enum DPSSolver {
    static func solve(
        _ p: SolverParameters, problem: InverseProblem, model: any NoisePredictor,
        progress: ProgressHandler, observer: IterateObserver?
    ) throws -> SolverResult {
        let trainSteps = problem.schedule.trainSteps
        let counter = EvaluationCounter(budget: p.budget, monitor: problem.monitor)
        // The sampling grid is fixed up front, so the budget shortens the grid rather than stopping it midway.
        let steps = min(p.dpsSteps, counter.remaining)
        guard steps >= 1 else { throw SolverError(code: "budget.exceeded", message: "dps needs at least 1 UNet evaluation") }
        let delta = trainSteps / steps
        let grid = DDIMGrid.dmplug(steps: steps, trainSteps: trainSteps)
        var rng = SeededRandom(seed: p.seed, stream: "dps-initial-noise")
        var x = rng.gaussianTensor(shape: problem.op.inputShape)
        var noise = SeededRandom(seed: p.seed, stream: "dps-step-noise")
        let c = model.sampleShape.channels
        let shape4 = [1, c, model.sampleShape.height, model.sampleShape.width]
        var x0c = x.copy()
        var stop = StopReason.iterations
        var history: [Double] = []
        for (k, t) in grid.enumerated() {
            let abarT = problem.schedule.alphaBar(t), abarP = problem.schedule.alphaBar(t - delta)
            let aT = Float(abarT.squareRoot()), sT = Float((1 - abarT).squareRoot())
            let (out, tape) = try model.forwardForVJP(x.copy().reshape(shape4), timestep: Float(t))
            try counter.add(1)
            let x0 = Tensor(shape: x.shape, zeroed: false)
            for i in 0..<x.count { x0[i] = (x[i] - sT * out[i]) / aT }
            // ∇_x ‖A(x̂0) − y‖ = (1/a_t)·g + J_εᵀ(−(s_t/a_t)·g),  g = J_Aᵀ r/‖r‖
            let r = problem.op.apply(x0)
            r.axpy(-1, problem.y)
            let nr = max(r.norm, 1e-12)
            r.scale(by: Float(1 / nr))
            let g = problem.op.vjp(at: x0, cotangent: r)
            let cot = Tensor(shape: out.shape)
            for i in 0..<x.count { cot[i] = -sT / aT * g[i] }
            let ge = try model.vjp(tape, cotangent: cot)
            // Sampling update with η = 1 from the clipped x̂0 (noise re-derived from it, as the DDIM step does).
            x0c = x0.copy()
            Vec.clamp(x0c.count, x0c.data, -1, 1)
            let sigma = ((1 - abarP) / (1 - abarT)).squareRoot() * (1 - abarT / abarP).squareRoot()
            let dirScale = Float(max(1 - abarP - sigma * sigma, 0).squareRoot())
            let aP = Float(abarP.squareRoot())
            let next = Tensor(shape: x.shape, zeroed: false)
            let zeta = Float(p.dpsZeta)
            for i in 0..<x.count {
                let e2 = (x[i] - aT * x0c[i]) / sT
                let grad = g[i] / aT + ge[i]
                next[i] = aP * x0c[i] + dirScale * e2 + Float(sigma * noise.gaussian()) - zeta * grad
            }
            x = next
            if k % max(1, steps / 10) == 0 {
                history.append(problem.relativeResidual(x0c))
                observer?(x0c, counter.count)
            }
            if k % 5 == 0,
                !progress(
                    SolverProgress(
                        method: .dps, stage: "step \(k + 1)/\(steps)", iteration: k + 1,
                        iterations: steps, unetEvaluations: counter.count, budget: p.budget,
                        inner: k + 1, residual: history.last))
            {
                stop = .cancelled; break
            }
        }
        // The last step lands on ᾱ = 1 (x = x̂0 minus a final guidance step); clamp for the image.
        let result = stop == .cancelled ? x0c : x
        Vec.clamp(result.count, result.data, -1, 1)
        history.append(problem.relativeResidual(result))
        if steps < p.dpsSteps { stop = .budget }
        return SolverResult(x: result, unetEvaluations: counter.count, outerIterations: steps, stoppedBy: stop, residualHistory: history)
    }
}
