import DMiloKernels
import DMiloOperators

/// The cheap classical estimate, no diffusion prior. For a linear A, Tikhonov regularisation with a smoothness prior,
///     x̂ = argmin ‖A x − y‖² + μ‖D x‖² + ε‖x‖²     (D: horizontal and vertical finite differences)
/// solved by conjugate gradients on (AᵀA + μDᵀD + εI) x = Aᵀy. Per operator this is: denoising by smoothing,
/// harmonic (membrane) fill of missing pixels for inpainting, smooth interpolation for super-resolution, Tikhonov
/// deconvolution for blur, a smooth least-squares solution for compressed sensing. μ scales with ‖A‖² so one default
/// fits every operator. For the saturating HDR sensor, x̂ = clamp(y/gain) (exact wherever the sensor did not clip).
enum BaselineSolver {
    static func solve(_ p: SolverParameters, problem: InverseProblem) throws -> SolverResult {
        let op = problem.op
        let x: Tensor
        if let hdr = op as? HDR {
            x = problem.y.copy()
            x.scale(by: 1 / hdr.gain)
        } else if op.isLinear {
            let norm = try OperatorNorm.estimate(op), norm2 = norm * norm
            let mu = (p.baselineMu ?? max(0.02, 2 * problem.noiseSigma)) * norm2
            x = conjugateGradient(op: op, y: problem.y, mu: Float(mu), eps: Float(1e-6 * norm2), iterations: 300)
        } else {
            throw SolverError(code: "solver.invalid", message: "baseline: no classical estimator for the nonlinear operator \(op.name)")
        }
        Vec.clamp(x.count, x.data, -1, 1)
        return SolverResult(
            x: x, unetEvaluations: 0, outerIterations: 1, stoppedBy: .iterations,
            residualHistory: [problem.relativeResidual(x)])
    }

    /// CG for the normal equations with the smoothness term; x starts at 0.
    static func conjugateGradient(op: any MeasurementOperator, y: Tensor, mu: Float, eps: Float, iterations: Int) -> Tensor {
        let shape = op.inputShape
        func normal(_ v: Tensor) -> Tensor {
            let out = op.adjoint(op.apply(v))
            let lap = differencesGram(v, shape: shape)
            out.axpy(mu, lap)
            out.axpy(eps, v)
            return out
        }
        let x = Tensor(shape: shape)
        let r = op.adjoint(y)
        let d = r.copy()
        var rr = r.dot(r)
        let stop = rr * 1e-12
        for _ in 0..<iterations where rr > stop {
            let q = normal(d)
            let alpha = rr / max(d.dot(q), 1e-30)
            x.axpy(Float(alpha), d)
            r.axpy(Float(-alpha), q)
            let rrNew = r.dot(r)
            let beta = rrNew / rr
            rr = rrNew
            for i in 0..<d.count { d[i] = r[i] + Float(beta) * d[i] }
        }
        return x
    }

    /// DᵀD v for forward differences along W and H with Neumann boundaries (the graph Laplacian of the pixel grid).
    static func differencesGram(_ v: Tensor, shape: [Int]) -> Tensor {
        let (c, h, w) = (shape[0], shape[1], shape[2])
        let out = Tensor(shape: shape)
        for ch in 0..<c {
            let base = ch * h * w
            for i in 0..<h {
                for j in 0..<w {
                    let k = base + i * w + j
                    if j + 1 < w { let dlt = v[k] - v[k + 1]; out[k] += dlt; out[k + 1] -= dlt }
                    if i + 1 < h { let dlt = v[k] - v[k + w]; out[k] += dlt; out[k + w] -= dlt }
                }
            }
        }
        return out
    }
}
