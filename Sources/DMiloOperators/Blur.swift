import DMiloKernels

/// Blur with a known kernel: per-channel cross-correlation (kernel not flipped) with numpy "reflect" borders and
/// kernel centre (k/2, k/2); see ``ReflectCorrelation``. The kernel is normalised to sum 1. y has the image's
/// shape (C, H, W). Linear; `vjp` is the exact adjoint.
/// ``GaussianBlur`` and ``MotionBlur`` are Blurs whose kernel is generated from parameters.
public class Blur: MeasurementOperator, @unchecked Sendable {
    public let name: String
    public let inputShape: [Int]
    public var outputShape: [Int] { inputShape }
    public let isLinear = true
    let correlation: ReflectCorrelation

    /// - Parameters: kernel: (k, k) array (any (kh, kw) works), finite with a nonzero sum; requires k/2 < H, W.
    ///   field: manifest path named in errors.
    public convenience init(kernel: Tensor, imageShape: [Int], field: String = "operator.kernel") throws {
        try self.init(name: "blur", kernel: kernel, imageShape: imageShape, field: field)
    }

    init(name: String, kernel: Tensor, imageShape: [Int], field: String) throws {
        self.name = name
        correlation = try ReflectCorrelation(kernel: kernel, imageShape: imageShape, field: field)
        inputShape = imageShape
    }

    /// The normalised kernel (kh, kw).
    public var kernel: Tensor { Tensor(shape: [correlation.kh, correlation.kw], values: correlation.kernel) }

    public func apply(_ x: Tensor) -> Tensor {
        precondition(x.count == inputShape.reduce(1, *), "\(name): input \(x.shape), expected \(inputShape)")
        let y = Tensor(shape: outputShape, zeroed: false)
        correlation.forward(x.data, y.data)
        return y
    }

    public func vjp(at x: Tensor, cotangent: Tensor) -> Tensor {
        precondition(cotangent.count == outputShape.reduce(1, *), "\(name): cotangent \(cotangent.shape)")
        let g = Tensor(shape: inputShape, zeroed: false)
        correlation.transpose(cotangent.data, g.data)
        return g
    }
}
