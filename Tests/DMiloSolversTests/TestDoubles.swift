import DMiloKernels
import DMiloModel
import DMiloOperators
import Foundation

@testable import DMiloSolvers

/// ε predictor that is EXACT for Gaussian data x0 ~ N(μ, s²I): E[ε | x_t] = s_t·(x_t − a_t μ)/(a_t² s² + s_t²),
/// plus an optional tanh nonlinearity (to exercise VJPs through a nonlinear network), the same for every batch item.
final class GaussianPredictor: NoisePredictor {
    let c, h, w: Int
    let mu: Float, s2: Float
    let schedule = NoiseSchedule()
    let nonlinear: Bool
    var forwards = 0
    init(c: Int = 1, h: Int = 8, w: Int = 8, mu: Float = 0.2, s: Float = 0.5, nonlinear: Bool = false) {
        self.c = c; self.h = h; self.w = w; self.mu = mu; self.s2 = s * s; self.nonlinear = nonlinear
    }
    var sampleShape: (channels: Int, height: Int, width: Int) { (c, h, w) }
    var outputChannels: Int { c }
    final class Tape: ActivationTape {
        let x: Tensor; let t: Float; var bytes: Int { x.count * 4 }
        init(x: Tensor, t: Float) { self.x = x; self.t = t }
    }
    func coeffs(_ t: Float) -> (Float, Float) {
        let abar = Float(schedule.alphaBar(Int(t)))
        let a = abar.squareRoot(), st = (1 - abar).squareRoot()
        let k = st / (abar * s2 + st * st)
        return (k, a)
    }
    func forward(_ x: Tensor, timestep: Float) throws -> Tensor {
        forwards += 1
        let (k, a) = coeffs(timestep)
        let out = Tensor(shape: x.shape)
        for i in 0..<x.count {
            let lin = k * (x[i] - a * mu)
            out[i] = nonlinear ? lin + 0.3 * tanh(2 * x[i] + 0.1 * Float(i % (c * h * w) % 5)) : lin
        }
        return out
    }
    func forwardForVJP(_ x: Tensor, timestep: Float) throws -> (output: Tensor, tape: any ActivationTape) {
        (try forward(x, timestep: timestep), Tape(x: x.copy(), t: timestep))
    }
    func vjp(_ tape: any ActivationTape, cotangent: Tensor) throws -> Tensor {
        let tp = tape as! Tape
        let (k, _) = coeffs(tp.t)
        let dx = Tensor(shape: tp.x.shape)
        for i in 0..<dx.count {
            var d = k
            if nonlinear { let th = tanh(2 * tp.x[i] + 0.1 * Float(i % (c * h * w) % 5)); d += 0.3 * 2 * (1 - th * th) }
            dx[i] = d * cotangent[i]
        }
        return dx
    }
    func vjpMemoryBytes(batch: Int) -> Int { batch * c * h * w * 4 }
}

/// Draws an image from the Gaussian prior the predictor is exact for.
func gaussianImage(_ p: GaussianPredictor, seed: UInt64) -> Tensor {
    var r = SeededRandom(seed: seed, stream: "test-image")
    let x = Tensor(shape: [p.c, p.h, p.w])
    for i in 0..<x.count { x[i] = min(max(p.mu + Float(r.gaussian()) * p.s2.squareRoot(), -1), 1) }
    return x
}

func mse(_ a: Tensor, _ b: Tensor) -> Double {
    var s = 0.0
    for i in 0..<a.count { let d = Double(a[i] - b[i]); s += d * d }
    return s / Double(a.count)
}
