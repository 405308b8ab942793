import DMiloKernels

/// Super-resolution sensor: downsampling by an integer factor f ∈ {2, 4}. x is (C, H, W), y is (C, H/f, W/f);
/// H and W must be divisible by f.
///
/// Kernels:
/// - `bicubic` (default): MATLAB `imresize(x, 1/f)` with antialiasing, as `util/resizer.py` of the official code
///   (docs/algorithms.md §6.1): Keys cubic (a = −0.5) stretched by f, separable (H then W), half-sample-symmetric
///   mirroring at the borders. See ``SuperResolution/bicubicAxis(inputLength:factor:)``.
/// - `box`: the mean of each f×f block.
/// A is linear; `vjp` is the exact transpose (not the nearest-neighbour "transpose" of the official code).
public final class SuperResolution: MeasurementOperator, @unchecked Sendable {
    public enum Kernel: String, Sendable, CaseIterable {
        case bicubic, box
    }

    public let name = "super_resolution"
    public let inputShape: [Int]
    public let outputShape: [Int]
    public let isLinear = true
    public let factor: Int
    public let kernel: Kernel
    /// The per-axis resampling along H and along W.
    public let rows: AxisResampling
    public let cols: AxisResampling

    /// - Parameters: factor: 2 or 4; kernel: `.bicubic` or `.box`; imageShape: [C, H, W] with f | H and f | W.
    public init(factor: Int, kernel: Kernel = .bicubic, imageShape: [Int]) throws {
        try validateImageShape(imageShape)
        guard factor == 2 || factor == 4 else {
            throw OperatorError.invalid("operator.factor", "super-resolution factor must be 2 or 4, got \(factor)")
        }
        let (c, h, w) = (imageShape[0], imageShape[1], imageShape[2])
        guard h % factor == 0, w % factor == 0 else {
            throw OperatorError.invalid(
                "operator.factor",
                "super-resolution factor \(factor) must divide the image height and width, image is \(h)x\(w)")
        }
        self.factor = factor
        self.kernel = kernel
        inputShape = imageShape
        outputShape = [c, h / factor, w / factor]
        let axis = kernel == .bicubic ? Self.bicubicAxis(inputLength:factor:) : Self.boxAxis(inputLength:factor:)
        rows = axis(h, factor)
        cols = axis(w, factor)
    }

    public func apply(_ x: Tensor) -> Tensor {
        precondition(x.count == inputShape.reduce(1, *), "SuperResolution: input \(x.shape), expected \(inputShape)")
        return SeparableResampling.forward(x, channels: inputShape[0], rows: rows, cols: cols)
    }

    public func vjp(at x: Tensor, cotangent: Tensor) -> Tensor {
        precondition(cotangent.count == outputShape.reduce(1, *), "SuperResolution: cotangent \(cotangent.shape)")
        return SeparableResampling.transpose(cotangent, channels: inputShape[0], rows: rows, cols: cols)
    }

    /// Keys cubic convolution kernel with a = −0.5 (MATLAB `cubic`).
    public static func cubic(_ x: Double) -> Double {
        let ax = abs(x), ax2 = ax * ax, ax3 = ax2 * ax
        if ax <= 1 { return 1.5 * ax3 - 2.5 * ax2 + 1 }
        if ax <= 2 { return -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2 }
        return 0
    }

    /// MATLAB `imresize` contributions for scale s = 1/f with antialiasing (as `resizer.py`):
    /// for output o (0-based) the centre in input coordinates is c = f·o + (f − 1)/2; the stretched kernel
    /// h(d) = cubic(d / f) / f has width 4f, so the taps are k = floor(c − 2f) … plus 4f + 2 (MATLAB's
    /// `ceil(width) + 2`), weights h(c − k) normalised to sum 1, out-of-range k mirrored half-sample-symmetrically.
    /// Tap columns that are zero for every output are dropped (as MATLAB does), leaving 4f taps
    /// k = f·o − 3f/2 … f·o + 5f/2 − 1; for f = 4 these are 4o−6 … 4o+9 (docs/algorithms.md §6.1).
    public static func bicubicAxis(inputLength: Int, factor f: Int) -> AxisResampling {
        let outLen = inputLength / f
        let p = 4 * f + 2
        var idx = [Int](repeating: 0, count: outLen * p)
        var wts = [Double](repeating: 0, count: outLen * p)
        for o in 0..<outLen {
            let centre = Double(f * o) + Double(f - 1) / 2
            let left = Int((centre - 2 * Double(f)).rounded(.down))
            var sum = 0.0
            for t in 0..<p {
                let k = left + t
                let wk = cubic((centre - Double(k)) / Double(f)) / Double(f)
                idx[o * p + t] = k
                wts[o * p + t] = wk
                sum += wk
            }
            for t in 0..<p { wts[o * p + t] /= sum }
        }
        // Drop tap columns that are zero for every output.
        let live = (0..<p).filter { t in (0..<outLen).contains { wts[$0 * p + t] != 0 } }
        var indices: [Int] = [], weights: [Float] = []
        indices.reserveCapacity(outLen * live.count)
        weights.reserveCapacity(outLen * live.count)
        for o in 0..<outLen {
            for t in live {
                indices.append(mirrorIndex(idx[o * p + t], inputLength))
                weights.append(Float(wts[o * p + t]))
            }
        }
        return AxisResampling(
            inputLength: inputLength, outputLength: outLen, taps: live.count,
            indices: indices, weights: weights)
    }

    /// Block mean along one axis: output o = (1/f) Σ_{t<f} input[f·o + t].
    public static func boxAxis(inputLength: Int, factor f: Int) -> AxisResampling {
        let outLen = inputLength / f  // output o reads inputs f·o … f·o + f − 1: the indices are 0 ..< outLen·f in order
        return AxisResampling(
            inputLength: inputLength, outputLength: outLen, taps: f, indices: Array(0..<(outLen * f)),
            weights: [Float](repeating: 1 / Float(f), count: outLen * f))
    }
}
