import DMiloKernels

/// What the solvers need from a diffusion network: ε_θ(x, t) and its vector-Jacobian product w.r.t. x
/// (weights frozen). Implemented by `UNet2DModel`; tests may supply analytic predictors.
public protocol NoisePredictor: AnyObject {
    /// Image geometry of one sample: (channels, height, width).
    var sampleShape: (channels: Int, height: Int, width: Int) { get }
    /// Channels of the raw output (≥ sampleShape.channels; e.g. 6 for learn-sigma ADM models).
    var outputChannels: Int { get }
    /// Raw network output for a batch x of shape (B, C, H, W) at integer train timestep `timestep` (0..<1000).
    /// Keeps no activations.
    func forward(_ x: Tensor, timestep: Float) throws -> Tensor
    /// Forward pass that records what `vjp` needs. The tape is consumed by one `vjp` call.
    func forwardForVJP(_ x: Tensor, timestep: Float) throws -> (output: Tensor, tape: any ActivationTape)
    /// dL/dx for L = Σ cotangent ⊙ output, using (and releasing) the tape.
    func vjp(_ tape: any ActivationTape, cotangent: Tensor) throws -> Tensor
    /// Bytes one forward+VJP needs at this batch size (activations kept + scratch), for memory planning.
    func vjpMemoryBytes(batch: Int) -> Int
}

/// Activations saved by `forwardForVJP`; opaque to callers.
public protocol ActivationTape: AnyObject {
    var bytes: Int { get }
}
