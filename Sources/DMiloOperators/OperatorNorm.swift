import DMiloKernels

/// ‖A‖₂ (largest singular value) of a linear operator by power iteration on AᵀA, for solver step sizes
/// (e.g. PGD's 1/‖A‖²).
public enum OperatorNorm {
    /// Starts from a Gaussian vector (SeededRandom(seed:, stream: "operator-norm")) and iterates
    /// v ← AᵀA v / ‖AᵀA v‖ until the estimate changes by less than `tolerance` (relative) or after `maxIterations`.
    /// Power iteration approaches ‖A‖ from below. Throws for a nonlinear operator.
    public static func estimate(
        _ op: any MeasurementOperator, maxIterations: Int = 100, tolerance: Double = 1e-6,
        seed: UInt64 = 0
    ) throws -> Double {
        guard op.isLinear else {
            throw OperatorError(code: "operator.nonlinear", message: "\(op.name) is not linear; it has no operator norm")
        }
        var rng = SeededRandom(seed: seed, stream: "operator-norm")
        var v = rng.gaussianTensor(shape: op.inputShape)
        v.scale(by: Float(1 / max(v.norm, 1e-30)))
        var estimate = 0.0
        for _ in 0..<max(1, maxIterations) {
            let w = op.adjoint(op.apply(v))
            let nw = w.norm  // = ‖AᵀA v‖ → σ_max² as v aligns with the top singular vector
            if nw == 0 { return 0 }
            let next = nw.squareRoot()
            w.scale(by: Float(1 / nw))
            v = w
            if abs(next - estimate) <= tolerance * next { return next }
            estimate = next
        }
        return estimate
    }
}
