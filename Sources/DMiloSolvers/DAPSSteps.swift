import DMiloKernels
import DMiloModel
import DMiloOperators
import Foundation

// The three pieces of DAPS (Zhang et al., "Improving Diffusion Inverse Problem Solving with Decoupled Noise
// Annealing", CVPR 2025; docs/algorithms.md "DAPS"), written for a VP (DDPM) model: the paper's VE state
// x = x0 + σ·ε at noise level σ is the model's x_t / a_t with σ = s_t / a_t (a = √ᾱ, s = √(1 − ᾱ)).

/// The annealing levels and ODE grids, as integer train timesteps of the model's schedule.
public enum DAPSSchedule {
    /// VE noise level of train timestep t: σ(t) = √((1 − ᾱ_t) / ᾱ_t).
    public static func sigma(_ t: Int, _ schedule: NoiseSchedule) -> Double {
        let abar = schedule.alphaBar(t)
        return ((1 - abar) / abar).squareRoot()
    }

    /// The largest timestep whose σ does not exceed `sigma` (σ(t) grows with t), at least 0.
    static func timestep(forSigma target: Double, _ schedule: NoiseSchedule) -> Int {
        var lo = 0, hi = schedule.trainSteps - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if sigma(mid, schedule) <= target { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Annealing levels t_0 > t_1 > … : σ_i follows the EDM polynomial (ρ = 7) from σ_max = σ(T − 1) down to
    /// `sigmaMin`, as the DAPS annealing scheduler does (there from 100 to 0.1); mapped to timesteps, duplicates
    /// dropped (near σ_min several σ_i can round to one timestep), so there may be fewer than `count` levels.
    /// Starting at T − 1 lets the chains start from the model's own prior x_T ~ N(0, I).
    public static func levels(count n: Int, schedule: NoiseSchedule, sigmaMin: Double = 0.1, rho: Double = 7) -> [Int] {
        let top = schedule.trainSteps - 1
        guard n > 1 else { return [top] }
        let hi = pow(sigma(top, schedule), 1 / rho), lo = pow(max(sigmaMin, sigma(0, schedule)), 1 / rho)
        var out: [Int] = []
        for i in 0..<n {
            let s = pow(hi + Double(i) / Double(n - 1) * (lo - hi), rho)
            let t = i == 0 ? top : timestep(forSigma: s, schedule)
            if out.last.map({ t < $0 }) ?? true { out.append(t) }
        }
        return out
    }

    /// The probability-flow ODE from timestep t to the clean image as DDIM: `steps` timesteps spaced evenly in t,
    /// t = τ_0 > τ_1 > … > τ_{m−1}, then ᾱ = 1 (encoded −1). Fewer steps when t < steps (no repeated timestep).
    public static func odeGrid(from t: Int, steps: Int) -> [Int] {
        var g: [Int] = []
        for j in 0..<max(1, steps) {
            let tau = Int((Double(t) * Double(steps - j) / Double(steps)).rounded())
            if g.last.map({ tau < $0 }) ?? true { g.append(tau) }
        }
        return g + [-1]
    }
}

/// Step 1 of an annealing level: x̂0(x_t), the end point of the probability-flow ODE started at x_t, solved with
/// the model's deterministic DDIM steps (η = 0, the x0 clip of `DDIMStep`): UNet forward passes only, one per
/// ODE step and batch item. With one step this is the model's DDIM x0 prediction clip((x_t − s_t ε)/a_t).
public enum DAPSODE {
    /// - Parameters: x: (B, C, H, W) at timestep `t`. Returns (B, C, H, W) and the forwards spent (per batch item).
    public static func estimate(
        _ x: Tensor, t: Int, steps: Int, model: any NoisePredictor,
        schedule: NoiseSchedule
    ) throws -> (x0: Tensor, forwards: Int) {
        let grid = DAPSSchedule.odeGrid(from: t, steps: steps)
        var z = x
        for j in 0..<(grid.count - 1) {
            let step = DDIMStep(t: grid[j], delta: grid[j] - grid[j + 1], schedule: schedule)
            z = try step.apply(z, model: model, keep: false).0
        }
        return (z, grid.count - 1)
    }
}

/// Step 2 of an annealing level: unadjusted Langevin dynamics on
///     log p(x0 | x̂0, y) = −‖x0 − x̂0‖² / (2 r²) − ‖A(x0) − y‖² / (2 τ²) + const
/// (the paper's Gaussian approximation of p(x0 | x_t) times the measurement likelihood):
///     x0 ← x0 − η·[(x0 − x̂0)/r² + J_A(x0)ᵀ(A(x0) − y)/τ²] + √(2η)·ξ,   ξ ~ N(0, I).
/// Only A and its VJP are used, so nonlinear operators work as linear ones do.
public struct LangevinPosterior {
    public let op: any MeasurementOperator
    public let y: Tensor
    /// Likelihood standard deviation τ.
    public let tau: Double

    public init(op: any MeasurementOperator, y: Tensor, tau: Double) {
        self.op = op; self.y = y; self.tau = tau
    }

    /// Runs `steps` Langevin steps of size `eta` from x̂0 (the chain starts at the prior's mean, as in DAPS);
    /// `stochastic` false drops the noise (gradient descent toward the conditional's mode = its mean when A is linear).
    public func sample(anchor: Tensor, r: Double, eta: Double, steps: Int, noise: inout SeededRandom, stochastic: Bool = true) -> Tensor {
        let x = anchor.copy()
        let n = x.count
        let wPrior = Float(1 / (r * r)), wLik = Float(1 / (tau * tau))
        let lr = Float(eta), kick = Float((2 * eta).squareRoot())
        for _ in 0..<steps {
            let res = op.apply(x)
            for i in 0..<res.count { res[i] -= y[i] }
            let g = op.vjp(at: x, cotangent: res)
            for i in 0..<n {
                let grad = wPrior * (x[i] - anchor[i]) + wLik * g[i]
                x[i] += -lr * grad + (stochastic ? kick * Float(noise.gaussian()) : 0)
            }
        }
        return x
    }

    /// The largest curvature of the potential, L = 1/r² + ‖J_A‖²/τ², from `jacobianNormSquared`: Langevin steps
    /// are sized as a fraction of 1/L so that one step size fits operators of any norm.
    public func curvature(r: Double, jacobianNormSquared: Double) -> Double { 1 / (r * r) + jacobianNormSquared / (tau * tau) }

    /// ‖J_A‖² at x = 0: the operator norm squared for a linear A, else power iteration on J_AᵀJ_A with J_A·v by a
    /// central difference (the operators give VJPs, not JVPs). 0 when A is identically flat there.
    public static func jacobianNormSquared(_ op: any MeasurementOperator, iterations: Int = 30) -> Double {
        if op.isLinear, let n = try? OperatorNorm.estimate(op) { return n * n }
        let zero = Tensor(shape: op.inputShape)
        var rng = SeededRandom(seed: 0, stream: "daps-jacobian-norm")
        var v = rng.gaussianTensor(shape: op.inputShape)
        var estimate = 0.0
        let h: Float = 1e-3
        for _ in 0..<iterations {
            let nv = Float(max(norm(v), 1e-30))
            for i in 0..<v.count { v[i] /= nv }
            let plus = zero.copy(), minus = zero.copy()
            for i in 0..<v.count { plus[i] += h * v[i]; minus[i] -= h * v[i] }
            let ap = op.apply(plus), am = op.apply(minus)
            let jv = Tensor(shape: ap.shape)
            for i in 0..<jv.count { jv[i] = (ap[i] - am[i]) / (2 * h) }
            let w = op.vjp(at: zero, cotangent: jv)
            estimate = norm(w)  // = ‖JᵀJ v‖ → σ_max² as v aligns
            if estimate == 0 { return 0 }
            v = w
        }
        return estimate
    }

    static func norm(_ t: Tensor) -> Double {
        var s = 0.0
        for i in 0..<t.count { s += Double(t[i]) * Double(t[i]) }
        return s.squareRoot()
    }
}

/// Step 2 for a linear A, exactly: p(x0 | x̂0, y) ∝ N(x0; x̂0, r²I)·N(y; A x0, τ²I) is Gaussian with precision
/// P = I/r² + AᵀA/τ² and mean P⁻¹(x̂0/r² + Aᵀy/τ²). A sample is the mean of the same problem with perturbed data
/// ("perturb-and-MAP", Papandreou & Yuille 2010): draw x̃ = x̂0 + r·ξ1 and ỹ = y + τ·ξ2, then
///     x0 = argmin ‖x − x̃‖²/r² + ‖A x − ỹ‖²/τ² = P⁻¹(x̃/r² + Aᵀỹ/τ²),
/// whose distribution is exactly the posterior's (the map is affine in (ξ1, ξ2)). The solve is conjugate gradients
/// on P from x̃, A and Aᵀ only. With too few iterations the sample is biased toward x̃ in the directions of small
/// curvature, which Langevin started at x̂0 shares; CG reaches the well-measured directions first. Tens of CG
/// iterations do what Langevin's hundreds of steps of size 1/L do; not DAPS's default (docs/algorithms.md §11).
public struct GaussianConditional {
    public let op: any MeasurementOperator
    public let y: Tensor
    public let tau: Double

    public init(op: any MeasurementOperator, y: Tensor, tau: Double) {
        precondition(op.isLinear, "the exact conditional needs a linear operator")
        self.op = op; self.y = y; self.tau = tau
    }

    /// One sample (`perturb` true) or the conditional mean (false), by `iterations` CG iterations.
    public func sample(anchor: Tensor, r: Double, iterations: Int, perturb: Bool, noise: inout SeededRandom) -> Tensor {
        let n = anchor.count
        let wPrior = Float(1 / (r * r)), wLik = Float(1 / (tau * tau))
        let x = anchor.copy(), yt = y.copy()  // x starts at x̃
        if perturb {
            for i in 0..<n { x[i] += Float(r) * Float(noise.gaussian()) }
            for i in 0..<yt.count { yt[i] += Float(tau) * Float(noise.gaussian()) }
        }
        func precision(_ v: Tensor) -> Tensor {  // P v = v/r² + Aᵀ(A v)/τ²
            let out = op.adjoint(op.apply(v))
            out.scale(by: wLik)
            out.axpy(wPrior, v)
            return out
        }
        // residual of P x = b at x = x̃: b − P x̃ = (x̃/r² + Aᵀỹ/τ²) − (x̃/r² + AᵀA x̃/τ²) = Aᵀ(ỹ − A x̃)/τ²
        let ax = op.apply(x)
        for i in 0..<ax.count { ax[i] = yt[i] - ax[i] }
        let res = op.adjoint(ax)
        res.scale(by: wLik)
        let dir = res.copy()
        var rr = res.dot(res)
        for _ in 0..<iterations where rr > 0 {
            let pd = precision(dir)
            let alpha = rr / max(dir.dot(pd), 1e-300)
            x.axpy(Float(alpha), dir)
            res.axpy(Float(-alpha), pd)
            let rrNew = res.dot(res)
            let beta = Float(rrNew / rr)
            rr = rrNew
            dir.scale(by: beta)
            dir.axpy(1, res)
        }
        return x
    }
}
