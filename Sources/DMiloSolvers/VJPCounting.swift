import DMiloKernels
import DMiloModel

/// Counts the UNet input-VJPs a solver takes (batch items), for metrics.json `unet_vjp_evaluations`: each costs
/// ≈ 2.3× a forward pass here, so the count says what a method paid beyond its `unet_evaluations`. A wrapper in
/// `Solvers.run` (around the model and every replica) instead of a count in each solver: no solver can forget it.
final class VJPCountingPredictor: NoisePredictor {
    let inner: any NoisePredictor
    let tally: Tally

    final class Tally { var vjps = 0 }

    init(_ inner: any NoisePredictor, tally: Tally) { self.inner = inner; self.tally = tally }

    var sampleShape: (channels: Int, height: Int, width: Int) { inner.sampleShape }
    var outputChannels: Int { inner.outputChannels }
    func forward(_ x: Tensor, timestep: Float) throws -> Tensor { try inner.forward(x, timestep: timestep) }
    func forwardForVJP(_ x: Tensor, timestep: Float) throws -> (output: Tensor, tape: any ActivationTape) {
        try inner.forwardForVJP(x, timestep: timestep)
    }
    func vjp(_ tape: any ActivationTape, cotangent: Tensor) throws -> Tensor {
        tally.vjps += cotangent.shape.count == 4 ? cotangent.shape[0] : 1
        return try inner.vjp(tape, cotangent: cotangent)
    }
    func vjpMemoryBytes(batch: Int) -> Int { inner.vjpMemoryBytes(batch: batch) }
}
