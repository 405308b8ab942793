import DMiloKernels

/// Blur with a known kernel: per-channel cross-correlation (kernel not flipped) with numpy "reflect" borders and
/// kernel centre (k/2, k/2); see ``ReflectCorrelation``. The kernel is normalised to sum 1. y has the image's
/// shape (C, H, W). Linear; `vjp` is the exact adjoint.
/// ``GaussianBlur`` and ``MotionBlur`` are Blurs whose kernel is generated from parameters.
public class Blur: MeasurementOperator, @unchecked Sendable {
    public let name: String
    public let inputShape: [Int]
    public let outputShape: [Int]
    public let geometry: BlurGeometry
    public let isLinear = true
    let correlation: ReflectCorrelation
    /// For a rank-1 kernel kᵢⱼ = uᵢ·vⱼ: the same correlation as two 1-D passes (k + k instead of k² MACs per pixel).
    let separable: (rows: AxisResampling, cols: AxisResampling)?

    /// - Parameters: kernel: (k, k) array (any (kh, kw) works), finite with a nonzero sum; requires k/2 < H, W.
    ///   field: manifest path named in errors.
    public convenience init(
        kernel: Tensor, imageShape: [Int], field: String = "operator.kernel",
        geometry: BlurGeometry = .same
    ) throws {
        try self.init(name: "blur", kernel: kernel, imageShape: imageShape, field: field, geometry: geometry)
    }

    /// `factors` (u, v) with kernel = u vᵀ (up to scale) enables the separable path.
    init(
        name: String, kernel: Tensor, imageShape: [Int], field: String, factors: ([Double], [Double])? = nil,
        geometry: BlurGeometry = .same
    ) throws {
        self.name = name
        self.geometry = geometry
        let c = try ReflectCorrelation(kernel: kernel, imageShape: imageShape, field: field, geometry: geometry)
        correlation = c
        inputShape = imageShape
        outputShape = [imageShape[0], c.outHeight, c.outWidth]
        separable = factors.map { u, v in
            (
                Blur.reflectAxis(length: imageShape[1], outputLength: c.outHeight, taps: u),
                Blur.reflectAxis(length: imageShape[2], outputLength: c.outWidth, taps: v)
            )
        }
    }

    /// 1-D correlation with numpy "reflect" borders and centre k/2: out[i] = Σ_t u_t/Σu · in[r(i + t − k/2)],
    /// i < outputLength (the length itself, or one more for an even kernel in the paper geometry).
    static func reflectAxis(length: Int, outputLength: Int, taps u: [Double]) -> AxisResampling {
        let k = u.count, s = u.reduce(0, +), row = u.map { Float($0 / s) }
        let indices = (0..<(outputLength * k)).map { reflectIndex($0 / k + $0 % k - k / 2, length) }  // i·k + t
        return AxisResampling(
            inputLength: length, outputLength: outputLength, taps: k, indices: indices,
            weights: Array(repeatElement(row, count: outputLength).joined()))
    }

    /// The normalised kernel (kh, kw).
    public var kernel: Tensor { Tensor(shape: [correlation.kh, correlation.kw], values: correlation.kernel) }

    public func apply(_ x: Tensor) -> Tensor {
        precondition(x.count == inputShape.reduce(1, *), "\(name): input \(x.shape), expected \(inputShape)")
        guard let (rows, cols) = separable else { return correlation.forward(x) }
        return SeparableResampling.forward(x, channels: inputShape[0], rows: rows, cols: cols)
    }

    public func vjp(at x: Tensor, cotangent: Tensor) -> Tensor {
        precondition(cotangent.count == outputShape.reduce(1, *), "\(name): cotangent \(cotangent.shape)")
        guard let (rows, cols) = separable else { return correlation.transpose(cotangent) }
        return SeparableResampling.transpose(cotangent, channels: inputShape[0], rows: rows, cols: cols)
    }
}
