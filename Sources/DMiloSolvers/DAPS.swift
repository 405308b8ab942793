import DMiloKernels
import DMiloModel
import DMiloOperators

/// Decoupled Annealing Posterior Sampling (Zhang et al., CVPR 2025; docs/algorithms.md "DAPS"), pixel space.
/// For annealing levels t_0 > … > t_{N−1} (σ_t decreasing, `DAPSSchedule.levels`), each of K chains does
///     1. x̂0 = ODE(x_t)                      probability-flow ODE by DDIM, UNet forward passes only (`DAPSODE`)
///     2. x0 ~ p(x0 | x̂0, y) ∝ N(x0; x̂0, r_t²)·N(y; A(x0), τ²)   by Langevin MCMC (`LangevinPosterior`), r_t = σ_t
///     3. x_{t_{i+1}} = a·x0 + s·ε            re-noise to the next level (the paper's x0 + σ·ε in VP units)
/// and the last level's x0 is the chain's sample. The measurement enters only through A and its VJP, so the UNet
/// is never differentiated: `unet_vjp_evaluations` = 0. The K chains go through the UNet as one batch of K, or with
/// several cores as one sub-batch per core (`solve`).
public enum DAPSSolver {
    /// Runs the chains `chains` (their indices pick each chain's random stream, so chain k is the same whether it
    /// runs alone or in a batch); the budget counts every batch item.
    ///
    /// `replicas` (the model first, then predictors sharing its weights) split the chains into as many groups, each
    /// group's sub-batch and Langevin chains on a thread of its own with one core: at 32×32 a batch of K on one
    /// core costs about K batch-1 passes, and splitting a UNet pass over two cores gains far less than giving each
    /// core its own images, while the chains never exchange anything within a level.
    static func solve(
        _ p: SolverParameters, problem: InverseProblem, chains: [Int], replicas: [any NoisePredictor]? = nil,
        progress: ProgressHandler, observer: IterateObserver?
    ) throws -> SolverResult {
        let k = chains.count, schedule = problem.schedule, shape = problem.op.inputShape
        let per = shape.reduce(1, *)
        let counter = EvaluationCounter(budget: p.budget, monitor: problem.monitor)
        let levels = try plan(p, chains: k, schedule: schedule)
        let models = replicas ?? [problem.model]
        let groups = max(1, min(models.count, k))
        // chains [k·g/groups, k·(g+1)/groups) form group g
        let bounds = (0...groups).map { k * $0 / groups }
        let coresPerGroup = groups > 1 ? 1 : Threading.count

        // per-chain state, written by the chain's group only (disjoint slots, so groups may run at once)
        let rngs = UnsafeMutablePointer<SeededRandom>.allocate(capacity: k)
        rngs.initialize(from: chains.map { SeededRandom(seed: p.seed, stream: "daps-chain-\($0)") }, count: k)
        let samples = UnsafeMutablePointer<Tensor>.allocate(capacity: k)
        samples.initialize(repeating: Tensor(shape: shape), count: k)
        let failures = UnsafeMutablePointer<(any Error)?>.allocate(capacity: groups)
        failures.initialize(repeating: nil, count: groups)
        defer {
            rngs.deinitialize(count: k); rngs.deallocate()
            samples.deinitialize(count: k); samples.deallocate()
            failures.deinitialize(count: groups); failures.deallocate()
        }
        let x = Tensor(shape: [k] + shape, zeroed: false)  // x_t of every chain, (K, C, H, W)
        for c in 0..<k { rngs[c].fillGaussian(x.data + c * per, count: per) }  // x_T ~ N(0, I), the VP prior
        // τ: the measurement noise, floored so that a noiseless job keeps a well-posed likelihood (DAPS's 0.01).
        let tau = max(problem.noiseSigma, 0.01)
        let langevin = LangevinPosterior(op: problem.op, y: problem.y, tau: tau)
        let exact = p.dapsExactLikelihood && problem.op.isLinear ? GaussianConditional(op: problem.op, y: problem.y, tau: tau) : nil
        let jacobian2 = exact == nil ? LangevinPosterior.jacobianNormSquared(problem.op) : 0
        var stop = StopReason.iterations
        var history: [Double] = []
        for (i, t) in levels.enumerated() {
            let sigmaT = DAPSSchedule.sigma(t, schedule), sd = p.dapsDataStd
            let r = sd > 0 ? sigmaT * sd / (sigmaT * sigmaT + sd * sd).squareRoot() : sigmaT
            // DAPS's step schedule: δ decays linearly from δ_max to δ_max·min_ratio over the annealing; η = δ / L
            // (L the potential's curvature) keeps the step stable for any operator norm and noise level.
            let ratio = Double(i) / Double(levels.count)
            let delta = p.mcmcStep * (1 + ratio * (p.mcmcStepMinRatio - 1))
            let eta = delta / langevin.curvature(r: r, jacobianNormSquared: jacobian2)
            let next = i + 1 < levels.count ? levels[i + 1] : nil
            let aN = next.map { Float(schedule.alphaBar($0).squareRoot()) } ?? 1
            let sN = next.map { Float((1 - schedule.alphaBar($0)).squareRoot()) } ?? 0
            let last = next == nil
            let draw = !(p.dapsFinalMean && last)  // the last level may return the conditional's mode instead
            let forwardsPerItem = DAPSSchedule.odeGrid(from: t, steps: p.odeSteps).count - 1
            let level = { (g: Int) in
                Threading.withBudget(coresPerGroup) {
                    let lo = bounds[g], n = bounds[g + 1] - lo
                    guard n > 0 else { return }
                    do {
                        // the group's sub-batch: one UNet batch of n through the ODE
                        let xg = Tensor(shape: [n] + shape, zeroed: false)
                        xg.data.update(from: x.data + lo * per, count: n * per)
                        let (x0hat, _) = try DAPSODE.estimate(xg, t: t, steps: p.odeSteps, model: models[g], schedule: schedule)
                        for j in 0..<n {
                            let c = lo + j
                            let anchor = Tensor(shape: shape, zeroed: false)
                            anchor.data.update(from: x0hat.data + j * per, count: per)
                            let x0: Tensor
                            if let exact {
                                x0 = exact.sample(anchor: anchor, r: r, iterations: p.mcmcSteps, perturb: draw, noise: &rngs[c])
                            } else {
                                x0 = langevin.sample(
                                    anchor: anchor, r: r, eta: eta, steps: p.mcmcSteps, noise: &rngs[c], stochastic: draw)
                            }
                            samples[c] = x0
                            if !last {
                                for q in 0..<per { x[c * per + q] = aN * x0[q] + sN * Float(rngs[c].gaussian()) }
                            }
                        }
                    } catch { failures[g] = error }
                }
            }
            if groups == 1 { level(0) } else { Parallel.chunked(groups, chunks: groups, threads: groups, level) }
            if let e = (0..<groups).lazy.compactMap({ failures[$0] }).first { throw e }
            try counter.add(forwardsPerItem * k)
            if i % max(1, levels.count / 10) == 0 || last {
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
        let all = (0..<k).map { samples[$0] }
        for s in all { Vec.clamp(s.count, s.data, -1, 1) }
        // shortened by the budget (not just by levels that round to one timestep)?
        if stop != .cancelled, levels.count < DAPSSchedule.levels(count: p.annealingSteps, schedule: schedule, sigmaMin: p.dapsSigmaMin).count { stop = .budget }
        let mean = PosteriorSummary.mean(all)
        history.append(problem.relativeResidual(mean))
        return SolverResult(
            x: mean, unetEvaluations: counter.count, outerIterations: levels.count, stoppedBy: stop,
            residualHistory: history, samples: all)
    }

    /// The annealing levels that fit the budget: like DPS, the budget shortens the schedule (fewer, coarser
    /// levels) instead of stopping it midway, so the last level still lands near σ_min.
    public static func plan(_ p: SolverParameters, chains k: Int, schedule: NoiseSchedule) throws -> [Int] {
        func cost(_ levels: [Int]) -> Int {
            levels.reduce(0) { $0 + DAPSSchedule.odeGrid(from: $1, steps: p.odeSteps).count - 1 } * k
        }
        var n = p.annealingSteps
        var levels = DAPSSchedule.levels(count: n, schedule: schedule, sigmaMin: p.dapsSigmaMin)
        while cost(levels) > p.budget, n > 1 {
            n -= 1
            levels = DAPSSchedule.levels(count: n, schedule: schedule, sigmaMin: p.dapsSigmaMin)
        }
        guard cost(levels) <= p.budget else {
            throw SolverError(
                code: "budget.exceeded",
                message: "daps needs \(cost(levels)) UNet evaluations for one level of \(k) chains; the budget is \(p.budget)")
        }
        return levels
    }
}
