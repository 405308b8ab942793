import DMiloKernels
import DMiloModel

/// Timestep grids (docs/algorithms.md §1.2). Δ = 1000 // N with 1000 train steps.
public enum DDIMGrid {
    /// DMPlug: [(N−1)Δ, …, Δ, 0] — the last step lands on ᾱ = 1 (the clean x0).
    public static func dmplug(steps n: Int, trainSteps: Int = 1000) -> [Int] {
        let d = trainSteps / n
        return (0..<n).map { (n - 1 - $0) * d }
    }
    /// DMILO / DMILO-PGD: every entry shifted up by Δ, the first capped at T−1: N=3 → [999, 666, 333].
    public static func dmilo(steps n: Int, trainSteps: Int = 1000) -> [Int] {
        var g = dmplug(steps: n, trainSteps: trainSteps).map { $0 + trainSteps / n }
        if g[0] >= trainSteps { g[0] = trainSteps - 1 }
        return g
    }
}

/// One deterministic DDIM step g(x) at timestep t (docs/algorithms.md §1.3, eta = 0, clip_sample, set_alpha_to_one):
///   e  = ε_θ(x, t)[:C]
///   x0 = clip((x − s_t e) / a_t, −1, 1)
///   e' = (x − a_t x0) / s_t                       (noise re-derived from the clipped x0)
///   g(x) = a_p x0 + s_p e'  with p = t − Δ        (ᾱ_p = 1 when p < 0, so g(x) = x0)
/// a = √ᾱ, s = √(1 − ᾱ). Note p = t − Δ, not the next grid entry (matters only when Δ·N ≠ 1000).
public struct DDIMStep: Sendable {
    public let t: Int
    public let prev: Int
    let aT: Float, sT: Float, aP: Float, sP: Float

    public init(t: Int, delta: Int, schedule: NoiseSchedule) {
        self.t = t
        self.prev = t - delta
        let abarT = schedule.alphaBar(t), abarP = schedule.alphaBar(prev)
        aT = Float(abarT.squareRoot()); sT = Float((1 - abarT).squareRoot())
        aP = Float(abarP.squareRoot()); sP = Float((1 - abarP).squareRoot())
    }

    /// The steps of a grid, in sampling order.
    public static func chain(grid: [Int], trainSteps: Int, schedule: NoiseSchedule) -> [DDIMStep] {
        let delta = trainSteps / grid.count
        return grid.map { DDIMStep(t: $0, delta: delta, schedule: schedule) }
    }

    /// What `forward` keeps for `vjp`: the model's tape and the pre-clip x0 (for the clip mask).
    public struct Saved {
        let tape: any ActivationTape
        let x0Raw: Tensor
        let outputShape: [Int]
    }

    /// g(x) for a batch (B, C, H, W) or one (C, H, W) latent; returns the same shape. With `keep`, also what `vjp` needs.
    public func apply(_ x: Tensor, model: any NoisePredictor, keep: Bool) throws -> (Tensor, Saved?) {
        let s = model.sampleShape
        let input = x.shape.count == 4 ? x : x.copy().reshape([1, s.channels, s.height, s.width])
        let out: Tensor
        var tape: (any ActivationTape)? = nil
        if keep {
            let r = try model.forwardForVJP(input, timestep: Float(t))
            out = r.output; tape = r.tape
        } else {
            out = try model.forward(input, timestep: Float(t))
        }
        // ε is the first C output channels (learn-sigma models output 2C).
        let x0Raw = Tensor(shape: x.shape, zeroed: false)
        let result = Tensor(shape: x.shape, zeroed: false)
        let n = x.count
        let sampleCount = s.channels * s.height * s.width, outStride = model.outputChannels * s.height * s.width
        for i in 0..<n {
            let e = out[(i / sampleCount) * outStride + i % sampleCount]
            let u = (x[i] - sT * e) / aT
            x0Raw[i] = u
            let x0 = min(max(u, -1), 1)
            let e2 = (x[i] - aT * x0) / sT
            result[i] = aP * x0 + sP * e2
        }
        let saved = tape.map { Saved(tape: $0, x0Raw: x0Raw, outputShape: out.shape) }
        return (result, saved)
    }

    /// dL/dx given g = dL/dg(x), through the clip (PyTorch convention: gradient passes where −1 ≤ u ≤ 1, bounds
    /// included) and the UNet's VJP. Consumes `saved`.
    func vjp(_ g: Tensor, saved: Saved, model: any NoisePredictor) throws -> Tensor {
        // g(x) = (s_p/s_t)·x + (a_p − s_p·a_t/s_t)·x0(x)
        let direct = sP / sT
        let viaX0 = aP - sP * aT / sT
        let n = g.count
        let s = model.sampleShape
        let sampleCount = s.channels * s.height * s.width, outStride = model.outputChannels * s.height * s.width
        let dx = Tensor(shape: g.shape, zeroed: false)
        let cot = Tensor(shape: saved.outputShape)  // zero beyond the ε channels
        var anyThroughClip = false
        for i in 0..<n {
            let u = saved.x0Raw[i]
            let gu: Float = (u >= -1 && u <= 1) ? viaX0 * g[i] : 0
            if gu != 0 { anyThroughClip = true }
            dx[i] = direct * g[i] + gu / aT  // ∂u/∂x = 1/a_t
            cot[(i / sampleCount) * outStride + i % sampleCount] = -gu * sT / aT  // ∂u/∂e = −s_t/a_t
        }
        // Where the clip saturates everywhere, the UNet path carries no gradient: skip its VJP (the tape is dropped).
        if anyThroughClip {
            let de = try model.vjp(saved.tape, cotangent: cot)
            for i in 0..<n { dx[i] += de[i] }
        }
        return dx
    }
}

/// k consecutive DDIM steps treated as one ILO layer (layer span). Its VJP keeps k tapes alive at once, one per
/// model replica (replicas share weights, each owns its activation workspace), so memory grows with k: span 1 is DMILO's
/// one-step memory, span N is the whole sampler as in DMPlug.
struct DDIMSpan {
    let steps: [DDIMStep]

    func forward(_ x: Tensor, model: any NoisePredictor, counter: EvaluationCounter) throws -> Tensor {
        var z = x
        for s in steps { z = try s.apply(z, model: model, keep: false).0; try counter.add(1) }
        return z
    }

    /// Forward keeping step k's activations in `replicas[k]` (needs replicas.count ≥ steps.count).
    func forwardWithTapes(
        _ x: Tensor, model: any NoisePredictor, counter: EvaluationCounter,
        replicas: [any NoisePredictor]
    ) throws -> (Tensor, [DDIMStep.Saved]) {
        precondition(replicas.count >= steps.count, "a span of \(steps.count) steps needs as many model replicas")
        var z = x
        var saved: [DDIMStep.Saved] = []
        for (k, s) in steps.enumerated() {
            let (out, sv) = try s.apply(z, model: replicas[k], keep: true)
            z = out; saved.append(sv!); try counter.add(1)
        }
        return (z, saved)
    }

    func vjp(_ g: Tensor, saved: [DDIMStep.Saved], replicas: [any NoisePredictor]) throws -> Tensor {
        var grad = g
        for k in stride(from: steps.count - 1, through: 0, by: -1) {
            grad = try steps[k].vjp(grad, saved: saved[k], model: replicas[k])
        }
        return grad
    }
}
