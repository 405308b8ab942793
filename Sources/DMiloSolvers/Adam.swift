import DMiloKernels

/// Adam (Kingma & Ba) with PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8, bias correction, no weight decay.
/// One learning rate per parameter tensor (DMILO uses two groups: ν and z, docs/algorithms.md §3).
final class Adam {
    private let params: [Tensor]
    private let lrs: [Double]
    private let m: [Tensor], v: [Tensor]
    let beta1 = 0.9, beta2 = 0.999, eps = 1e-8
    /// β₁ᵗ and β₂ᵗ for the bias corrections, kept as running products.
    private var beta1Power = 1.0, beta2Power = 1.0

    init(params: [Tensor], learningRates: [Double]) {
        precondition(params.count == learningRates.count)
        self.params = params
        self.lrs = learningRates
        m = params.map { Tensor(shape: $0.shape) }
        v = params.map { Tensor(shape: $0.shape) }
    }

    /// θ ← θ − lr · m̂ / (√v̂ + ε), gradients in the same order as the parameters.
    func update(gradients: [Tensor]) {
        beta1Power *= beta1
        beta2Power *= beta2
        let bc1 = 1 - beta1Power, bc2 = 1 - beta2Power
        for (k, p) in params.enumerated() {
            let g = gradients[k], mk = m[k], vk = v[k]
            let stepSize = Float(lrs[k] / bc1)
            let b1 = Float(beta1), b2 = Float(beta2), sqrtBC2 = Float(bc2.squareRoot()), e = Float(eps)
            for i in 0..<p.count {
                mk[i] = b1 * mk[i] + (1 - b1) * g[i]
                vk[i] = b2 * vk[i] + (1 - b2) * g[i] * g[i]
                p[i] -= stepSize * mk[i] / (vk[i].squareRoot() / sqrtBC2 + e)
            }
        }
    }
}
