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

    /// Dense (outputLength × inputLength) matrix, row-major; for tests and small problems.
    public var denseMatrix: [Double] {
        var m = [Double](repeating: 0, count: outputLength * inputLength)
        for o in 0..<outputLength {
            for t in 0..<taps { m[o * inputLength + indices[o * taps + t]] += Double(weights[o * taps + t]) }
        }
        return m
    }
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
/// and its exact transpose. Buffers are caller-owned (llm.c style).
enum SeparableResampling {
    /// out (C, Ho, Wo) = Rw · (Rh · x) per channel. `tmp` holds C·Ho·W floats.
    static func forward(channels: Int, rows: AxisResampling, cols: AxisResampling,
                        x: UnsafePointer<Float>, tmp: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let h = rows.inputLength, w = cols.inputLength, ho = rows.outputLength, wo = cols.outputLength
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
    }

    /// dx (C, H, W) = Rhᵀ · (Rwᵀ · dOut) per channel (overwrites dx). `tmp` holds C·Ho·W floats.
    static func transpose(channels: Int, rows: AxisResampling, cols: AxisResampling,
                          dOut: UnsafePointer<Float>, tmp: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let h = rows.inputLength, w = cols.inputLength, ho = rows.outputLength, wo = cols.outputLength
        tmp.update(repeating: 0, count: channels * ho * w)
        dx.update(repeating: 0, count: channels * h * w)
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
    }
}
