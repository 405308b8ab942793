// Timestep / noise-level embeddings of diffusers UNet2DModel. No VJP: t is never differentiated in DMILO.
// Arithmetic is float32 step by step in the same order as the PyTorch code so embeddings match to ~1 ulp.

#if canImport(Glibc)
import Glibc
#endif

/// diffusers `get_timestep_embedding` and `GaussianFourierProjection`.
public enum TimestepEmbedding {
    /// diffusers `get_timestep_embedding` (embeddings.py), with half = dim / 2:
    ///   freq[i] = exp(−ln(maxPeriod) · i / (half − downscaleFreqShift)),  i = 0..<half
    ///   arg[b, i] = scale · (t[b] · freq[i])
    ///   emb = [sin(arg), cos(arg)]  (flipSinToCos: [cos(arg), sin(arg)]), zero-padded by one column when dim is odd.
    /// Writes out[B, dim].
    public static func sinusoidal(
        timesteps: [Float], dim: Int, flipSinToCos: Bool, downscaleFreqShift: Float,
        scale: Float = 1, maxPeriod: Float = 10000, out: UnsafeMutablePointer<Float>
    ) {
        let half = dim / 2
        // torch: (-math.log(max_period) * arange(half, float32)) / (half - shift), exp in float32
        let negLog = Float(-log(Double(maxPeriod)))  // math.log is double; torch rounds the scalar to float32
        let denom = Float(half) - downscaleFreqShift
        for (b, t) in timesteps.enumerated() {
            let row = out + b * dim
            let sinAt = flipSinToCos ? half : 0, cosAt = flipSinToCos ? 0 : half
            for i in 0..<half {
                let freq = expf((negLog * Float(i)) / denom)  // recomputed per row: no allocation per call
                let arg = scale * (t * freq)
                row[sinAt + i] = sinf(arg)
                row[cosAt + i] = cosf(arg)
            }
            if dim % 2 == 1 { row[dim - 1] = 0 }
        }
    }

    /// diffusers `GaussianFourierProjection` (UNet2DModel time_embedding_type="fourier"):
    ///   x = log(t) (when `log`),  proj[b, i] = ((x[b] · weight[i]) · 2) · π
    ///   out = [sin(proj), cos(proj)]  (flipSinToCos: [cos(proj), sin(proj)]).
    /// `weight` has `half` entries (the module's embedding_size); writes out[B, 2·half].
    public static func fourier(
        timesteps: [Float], weight: UnsafePointer<Float>, half: Int, flipSinToCos: Bool,
        log: Bool = true, out: UnsafeMutablePointer<Float>
    ) {
        let pi = Float.pi  // torch multiplies a float32 tensor by np.pi: the scalar is rounded to float32
        for (b, t) in timesteps.enumerated() {
            let x = log ? logf(t) : t
            let row = out + b * 2 * half
            let sinAt = flipSinToCos ? half : 0, cosAt = flipSinToCos ? 0 : half
            for i in 0..<half {
                let proj = ((x * weight[i]) * 2) * pi
                row[sinAt + i] = sinf(proj)
                row[cosAt + i] = cosf(proj)
            }
        }
    }
}
