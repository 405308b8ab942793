import DMiloKernels
import DMiloModel
import DMiloOperators

/// Decoupled Annealing Posterior Sampling (Zhang et al., CVPR 2025; docs/algorithms.md "DAPS"), pixel space.
/// For annealing levels t_0 > … > t_{N−1} (σ_t decreasing, `DAPSSchedule.levels`), each of K chains does
///     1. x̂0 = ODE(x_t)                      probability-flow ODE by DDIM, UNet forward passes only (`DAPSODE`)
///     2. x0 ~ p(x0 | x̂0, y) ∝ N(x0; x̂0, r_t²)·N(y; A(x0), τ²)   by Langevin MCMC (`LangevinPosterior`), r_t = σ_t
///     3. x_{t_{i+1}} = a·x0 + s·ε            re-noise to the next level (the paper's x0 + σ·ε in VP units)
/// and the last level's x0 is the chain's sample. The measurement enters only through A and its VJP, so the UNet
/// is never differentiated: `unet_vjp_evaluations` = 0. The K chains go through the UNet as one batch of K.
public enum DAPSSolver {
    /// Runs the chains `chains` (their indices pick each chain's random stream, so chain k is the same whether it
    /// runs alone or in a batch); the budget counts every batch item.
    static func solve(
        _ p: SolverParameters, problem: InverseProblem, chains: [Int], progress: ProgressHandler,
        observer: IterateObserver?
    ) throws -> SolverResult {
        let k = chains.count, schedule = problem.schedule, shape = problem.op.inputShape
        let per = shape.reduce(1, *)
        let counter = EvaluationCounter(budget: p.budget, monitor: problem.monitor)
        let levels = try plan(p, chains: k, schedule: schedule)

        var rngs = chains.map { SeededRandom(seed: p.seed, stream: "daps-chain-\($0)") }
        let x = Tensor(shape: [k] + shape, zeroed: false)  // x_t of every chain, (K, C, H, W)
        for c in 0..<k { rngs[c].fillGaussian(x.data + c * per, count: per) }  // x_T ~ N(0, I), the VP prior
        // τ: the measurement noise, floored so that a noiseless job keeps a well-posed likelihood (DAPS's 0.01).
        let langevin = LangevinPosterior(op: problem.op, y: problem.y, tau: max(problem.noiseSigma, 0.01))
        let jacobian2 = LangevinPosterior.jacobianNormSquared(problem.op)
        var samples = (0..<k).map { _ in Tensor(shape: shape) }
        var stop = StopReason.iterations
        var history: [Double] = []
        for (i, t) in levels.enumerated() {
            let (x0hat, forwards) = try DAPSODE.estimate(x, t: t, steps: p.odeSteps, model: problem.model, schedule: schedule)
            try counter.add(forwards * k)
            let r = DAPSSchedule.sigma(t, schedule)
            // DAPS's step schedule: δ decays linearly from δ_max to δ_max·min_ratio over the annealing; η = δ / L
            // (L the potential's curvature) keeps the step stable for any operator norm and noise level.
            let ratio = Double(i) / Double(levels.count)
            let delta = p.mcmcStep * (1 + ratio * (p.mcmcStepMinRatio - 1))
            let eta = delta / langevin.curvature(r: r, jacobianNormSquared: jacobian2)
            let next = i + 1 < levels.count ? levels[i + 1] : nil
            let aN = next.map { Float(schedule.alphaBar($0).squareRoot()) } ?? 1
            let sN = next.map { Float((1 - schedule.alphaBar($0)).squareRoot()) } ?? 0
            for c in 0..<k {
                let anchor = Tensor(shape: shape, zeroed: false)
                anchor.data.update(from: x0hat.data + c * per, count: per)
                let x0 = langevin.sample(anchor: anchor, r: r, eta: eta, steps: p.mcmcSteps, noise: &rngs[c])
                samples[c] = x0
                if next != nil {
                    for j in 0..<per { x[c * per + j] = aN * x0[j] + sN * Float(rngs[c].gaussian()) }
                }
            }
            if i % max(1, levels.count / 10) == 0 || next == nil {
                history.append(problem.relativeResidual(samples[0]))
                observer?(samples[0], counter.count)
            }
            if !progress(
                SolverProgress(
                    method: .daps, stage: "level \(i + 1)/\(levels.count) t=\(t)", iteration: i + 1,
                    iterations: levels.count, unetEvaluations: counter.count, budget: p.budget))
            {
                stop = .cancelled; break
            }
        }
        for s in samples { Vec.clamp(s.count, s.data, -1, 1) }
        // shortened by the budget (not just by levels that round to one timestep)?
        if stop != .cancelled, levels.count < DAPSSchedule.levels(count: p.annealingSteps, schedule: schedule).count { stop = .budget }
        let mean = PosteriorSummary.mean(samples)
        history.append(problem.relativeResidual(mean))
        return SolverResult(
            x: mean, unetEvaluations: counter.count, outerIterations: levels.count, stoppedBy: stop,
            residualHistory: history, samples: samples)
    }

    /// The annealing levels that fit the budget: like DPS, the budget shortens the schedule (fewer, coarser
    /// levels) instead of stopping it midway, so the last level still lands near σ_min.
    public static func plan(_ p: SolverParameters, chains k: Int, schedule: NoiseSchedule) throws -> [Int] {
        func cost(_ levels: [Int]) -> Int {
            levels.reduce(0) { $0 + DAPSSchedule.odeGrid(from: $1, steps: p.odeSteps).count - 1 } * k
        }
        var n = p.annealingSteps
        var levels = DAPSSchedule.levels(count: n, schedule: schedule)
        while cost(levels) > p.budget, n > 1 {
            n -= 1
            levels = DAPSSchedule.levels(count: n, schedule: schedule)
        }
        guard cost(levels) <= p.budget else {
            throw SolverError(
                code: "budget.exceeded",
                message: "daps needs \(cost(levels)) UNet evaluations for one level of \(k) chains; the budget is \(p.budget)")
        }
        return levels
    }
}
