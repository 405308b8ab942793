import DMiloKernels

/// A 1-D linear resampling along one axis: output o = Σ_t weights[o·taps + t] · input[indices[o·taps + t]].
/// Every output has the same number of taps; indices are already folded into [0, inputLength) by the
/// boundary rule, so a repeated index simply adds (this is how MATLAB `imresize` treats mirrored taps).
public struct AxisResampling: Sendable, Equatable {
    public let inputLength: Int
    public let outputLength: Int
    public let taps: Int
    public let indices: [Int]
    public let weights: [Float]
}

/// MATLAB `imresize` half-sample-symmetric mirror: … 1 0 | 0 1 … L−1 | L−1 L−2 …  (period 2L).
@inline(__always) func mirrorIndex(_ i: Int, _ length: Int) -> Int {
    let period = 2 * length
    let j = ((i % period) + period) % period
    return j < length ? j : period - 1 - j
}

/// numpy.pad(mode: "reflect") index: … 2 1 | 0 1 … L−1 | L−2 … (edge not repeated, period 2L−2).
@inline(__always) func reflectIndex(_ i: Int, _ length: Int) -> Int {
    if length == 1 { return 0 }
    let period = 2 * length - 2
    let j = ((i % period) + period) % period
    return j < length ? j : period - j
}

/// Applies a separable resampling (rows along H, then columns along W) to every channel of a (C, H, W) image,
/// and its exact transpose.
enum SeparableResampling {
    /// (C, Ho, Wo) = Rw · (Rh · x) per channel of x (C, H, W).
    static func forward(_ xt: Tensor, channels: Int, rows: AxisResampling, cols: AxisResampling) -> Tensor {
        let h = rows.inputLength, w = cols.inputLength, ho = rows.outputLength, wo = cols.outputLength
        let y = Tensor(shape: [channels, ho, wo], zeroed: false), t = Tensor(shape: [channels, ho, w], zeroed: false)
        let x = xt.data, tmp = t.data, out = y.data
        for c in 0..<channels {
            // rows: tmp[c, o, :] = Σ_t w_t · x[c, idx_t, :] (contiguous rows, vectorises)
            for o in 0..<ho {
                let dst = tmp + (c * ho + o) * w
                dst.update(repeating: 0, count: w)
                for t in 0..<rows.taps {
                    let a = rows.weights[o * rows.taps + t]
                    let src = x + (c * h + rows.indices[o * rows.taps + t]) * w
                    var j = 0
                    while j < w { dst[j] += a * src[j]; j &+= 1 }
                }
            }
            // columns: out[c, o, p] = Σ_t w_t · tmp[c, o, idx_t]
            for o in 0..<ho {
                let src = tmp + (c * ho + o) * w
                let dst = out + (c * ho + o) * wo
                for p in 0..<wo {
                    var s: Float = 0
                    for t in 0..<cols.taps { s += cols.weights[p * cols.taps + t] * src[cols.indices[p * cols.taps + t]] }
                    dst[p] = s
                }
            }
        }
        return y
    }

    /// (C, H, W) = Rhᵀ · (Rwᵀ · dOut) per channel of dOut (C, Ho, Wo).
    static func transpose(_ g: Tensor, channels: Int, rows: AxisResampling, cols: AxisResampling) -> Tensor {
        let h = rows.inputLength, w = cols.inputLength, ho = rows.outputLength, wo = cols.outputLength
        let dxt = Tensor(shape: [channels, h, w]), t = Tensor(shape: [channels, ho, w])  // zeroed: both accumulate
        let dOut = g.data, tmp = t.data, dx = dxt.data
        for c in 0..<channels {
            for o in 0..<ho {
                let src = dOut + (c * ho + o) * wo
                let dst = tmp + (c * ho + o) * w
                for p in 0..<wo {
                    let g = src[p]
                    for t in 0..<cols.taps { dst[cols.indices[p * cols.taps + t]] += cols.weights[p * cols.taps + t] * g }
                }
            }
            for o in 0..<ho {
                let src = tmp + (c * ho + o) * w
                for t in 0..<rows.taps {
                    let a = rows.weights[o * rows.taps + t]
                    let dst = dx + (c * h + rows.indices[o * rows.taps + t]) * w
                    var j = 0
                    while j < w { dst[j] += a * src[j]; j &+= 1 }
                }
            }
        }
        return dxt
    }
}
