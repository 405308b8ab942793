import DMiloKernels

/// A saturating (high-dynamic-range) sensor: y = clip(gain·x, −1, 1), nonlinear. y has the image's shape (C, H, W).
///
/// The VJP follows PyTorch's `clamp` subgradient: the cotangent passes (times `gain`) wherever
/// −1 ≤ gain·x ≤ 1, boundaries included, and is zero where the sensor saturated.
public final class HDR: MeasurementOperator, @unchecked Sendable {
    public let name = "hdr"
    public let inputShape: [Int]
    public var outputShape: [Int] { inputShape }
    public let isLinear = false
    /// Sensor gain (> 0).
    public let gain: Float

    /// - Parameters: gain: finite and > 0; imageShape: [C, H, W].
    public init(gain: Double, imageShape: [Int]) throws {
        try validateImageShape(imageShape)
        guard gain.isFinite, gain > 0, Float(gain).isFinite else {
            throw OperatorError.invalid("operator.gain", "gain must be a finite number > 0, got \(gain)")
        }
        self.gain = Float(gain)
        inputShape = imageShape
    }

    public func apply(_ x: Tensor) -> Tensor {
        let n = inputShape.reduce(1, *)
        precondition(x.count == n, "HDR: input \(x.shape), expected \(inputShape)")
        let y = Tensor(shape: outputShape, zeroed: false)
        for i in 0..<n { y.data[i] = min(max(gain * x.data[i], -1), 1) }
        return y
    }

    public func vjp(at x: Tensor, cotangent: Tensor) -> Tensor {
        let n = inputShape.reduce(1, *)
        precondition(x.count == n && cotangent.count == n, "HDR: x \(x.shape), cotangent \(cotangent.shape)")
        let g = Tensor(shape: inputShape, zeroed: false)
        for i in 0..<n {
            let v = gain * x.data[i]
            g.data[i] = (v >= -1 && v <= 1) ? gain * cotangent.data[i] : 0
        }
        return g
    }
}
