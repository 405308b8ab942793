import DMiloKernels

/// Denoising: A = I. y has the image's shape (C, H, W).
public final class Denoise: MeasurementOperator, @unchecked Sendable {
    public let name = "denoise"
    public let inputShape: [Int]
    public var outputShape: [Int] { inputShape }
    public let isLinear = true

    public init(imageShape: [Int]) throws {
        try validateImageShape(imageShape)
        inputShape = imageShape
    }

    public func apply(_ x: Tensor) -> Tensor {
        precondition(x.count == inputShape.reduce(1, *), "Denoise: input \(x.shape), expected \(inputShape)")
        return x.copy().reshape(outputShape)
    }

    public func vjp(at x: Tensor, cotangent: Tensor) -> Tensor {
        precondition(cotangent.count == inputShape.reduce(1, *), "Denoise: cotangent \(cotangent.shape)")
        return cotangent.copy().reshape(inputShape)
    }
}
