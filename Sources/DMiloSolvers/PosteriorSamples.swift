import DMiloKernels
import DMiloModel

/// Per-pixel statistics of K posterior samples (each (C, H, W), model units): the reconstruction is their mean,
/// the uncertainty their standard deviation.
public enum PosteriorSummary {
    public static func mean(_ samples: [Tensor]) -> Tensor {
        let m = Tensor(shape: samples[0].shape)
        for s in samples { for i in 0..<m.count { m[i] += s[i] } }
        let inv = 1 / Float(samples.count)
        for i in 0..<m.count { m[i] *= inv }
        return m
    }

    /// Sample standard deviation (K − 1 in the denominator: unbiased variance for K ≥ 2); zero for K = 1, where
    /// one sample says nothing about the spread.
    public static func standardDeviation(_ samples: [Tensor]) -> Tensor {
        let m = mean(samples)
        let sd = Tensor(shape: m.shape)
        guard samples.count > 1 else { return sd }
        for i in 0..<sd.count {
            var v = 0.0
            for s in samples { let d = Double(s[i] - m[i]); v += d * d }
            sd[i] = Float((v / Double(samples.count - 1)).squareRoot())
        }
        return sd
    }

    /// Fraction of pixels whose truth lies within mean ± z·σ.
    public static func coverage(truth: Tensor, mean: Tensor, sigma: Tensor, z: Double) -> Double {
        var inside = 0
        for i in 0..<truth.count where abs(Double(truth[i] - mean[i])) <= z * Double(sigma[i]) { inside += 1 }
        return Double(inside) / Double(max(truth.count, 1))
    }

    public static func meanValue(_ t: Tensor) -> Double {
        var s = 0.0
        for i in 0..<t.count { s += Double(t[i]) }
        return s / Double(max(t.count, 1))
    }
}

/// K independent chains of a posterior sampler. DAPS batches them through the UNet (one forward of batch K per
/// ODE step). DPS runs them one after another: its guidance differentiates the UNet and the `NoisePredictor` tape
/// holds one batch item per VJP here, so batching DPS would need a per-item residual norm through the tape; the
/// budget is split evenly (each chain gets ⌊budget / K⌋ evaluations).
enum PosteriorChains {
    static func run(
        _ p: SolverParameters, problem: InverseProblem, replicas: [any NoisePredictor], progress: ProgressHandler,
        observer: IterateObserver?
    ) throws -> SolverResult {
        let k = max(1, p.samples)
        switch p.method {
        case .daps:
            return try DAPSSolver.solve(p, problem: problem, chains: Array(0..<k), replicas: replicas, progress: progress, observer: observer)
        case .dps where k > 1:
            var samples: [Tensor] = []
            var evaluations = 0, outer = 0
            var stop = StopReason.iterations
            var history: [Double] = []
            for c in 0..<k {
                var q = p
                q.budget = p.budget == Int.max ? Int.max : p.budget / k
                // chain 0 is the single-chain run; the others draw their seed from a labelled stream of it
                if c > 0 { var r = SeededRandom(seed: p.seed, stream: "dps-chain-\(c)"); q.seed = r.next() }
                let res = try DPSSolver.solve(
                    q, problem: problem, model: problem.model,
                    progress: { pr in
                        var pr = pr
                        pr.stage = "chain \(c + 1)/\(k) " + pr.stage
                        pr.unetEvaluations += evaluations
                        pr.budget = p.budget
                        return progress(pr)
                    }, observer: c == 0 ? observer : nil)
                samples.append(res.x); evaluations += res.unetEvaluations; outer = res.outerIterations
                history = res.residualHistory
                if res.stoppedBy != .iterations { stop = res.stoppedBy }
                if stop == .cancelled { break }
            }
            return SolverResult(
                x: PosteriorSummary.mean(samples), unetEvaluations: evaluations, outerIterations: outer,
                stoppedBy: stop, residualHistory: history, samples: samples)
        default:
            var res = try DPSSolver.solve(p, problem: problem, model: problem.model, progress: progress, observer: observer)
            res.samples = [res.x]
            return res
        }
    }
}
