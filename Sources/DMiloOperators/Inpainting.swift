import DMiloKernels

/// Inpainting sensor: A(x) = m ⊙ x with a binary pixel mask m (1 = observed, 0 = missing), the same mask on
/// every channel. y has the image's shape (C, H, W); its values at missing pixels are ignored (A zeroes them).
/// A is diagonal, so it is its own adjoint.
public final class Inpainting: MeasurementOperator, @unchecked Sendable {
    public let name = "inpainting"
    public let inputShape: [Int]
    public var outputShape: [Int] { inputShape }
    public let isLinear = true
    /// (H, W) mask, 1 = observed, 0 = missing.
    public let mask: [Float]

    /// Mask from a file array of shape (H, W) or (1, H, W): nonzero = observed.
    /// For PNG masks the loader must hand over raw pixel values (0 = missing), not model units.
    public init(mask: Tensor, imageShape: [Int], field: String = "operator.mask") throws {
        try validateImageShape(imageShape)
        let (h, w) = (imageShape[1], imageShape[2])
        guard mask.shape == [h, w] || mask.shape == [1, h, w] else {
            throw OperatorError.file(field, "inpainting mask must have shape (\(h), \(w)) (or (1, \(h), \(w))), got \(mask.shape)")
        }
        var m = [Float](repeating: 0, count: h * w)
        for i in 0..<(h * w) {
            let v = mask.data[i]
            guard v.isFinite else { throw OperatorError.file(field, "inpainting mask holds a non-finite value at pixel \(i)") }
            m[i] = v != 0 ? 1 : 0
        }
        inputShape = imageShape
        self.mask = m
    }

    /// Random mask: exactly floor(missingFraction·H·W) pixels missing, drawn without replacement (partial
    /// Fisher–Yates over the H·W positions, row-major) from SeededRandom(seed: maskSeed, stream: "inpainting-mask").
    /// missingFraction ∈ [0, 1).
    public init(missingFraction: Double, maskSeed: UInt64, imageShape: [Int]) throws {
        try validateImageShape(imageShape)
        guard missingFraction.isFinite, missingFraction >= 0, missingFraction < 1 else {
            throw OperatorError.invalid(
                "operator.missing_fraction",
                "missing_fraction must be in [0, 1), got \(missingFraction)")
        }
        let n = imageShape[1] * imageShape[2]
        let missing = Int((missingFraction * Double(n)).rounded(.down))
        var rng = SeededRandom(seed: maskSeed, stream: "inpainting-mask")
        var order = Array(0..<n)
        for i in 0..<missing { order.swapAt(i, i + rng.index(below: n - i)) }
        var m = [Float](repeating: 1, count: n)
        for i in 0..<missing { m[order[i]] = 0 }
        inputShape = imageShape
        mask = m
    }

    /// Missing rectangle [x, y, w, h]: columns x..<x+w, rows y..<y+h are missing; must lie inside the image.
    public init(box: [Int], imageShape: [Int]) throws {
        try validateImageShape(imageShape)
        let (h, w) = (imageShape[1], imageShape[2])
        guard box.count == 4 else {
            throw OperatorError.invalid("operator.box", "box must be [x, y, w, h], got \(box.count) numbers")
        }
        let (bx, by, bw, bh) = (box[0], box[1], box[2], box[3])
        guard bx >= 0, by >= 0, bw >= 1, bh >= 1, bx <= w - bw, by <= h - bh else {
            throw OperatorError.invalid(
                "operator.box",
                "box [x, y, w, h] = \(box) must have w, h >= 1 and lie inside the \(w)x\(h) (width x height) image")
        }
        var m = [Float](repeating: 1, count: h * w)
        for r in by..<(by + bh) { for c in bx..<(bx + bw) { m[r * w + c] = 0 } }
        inputShape = imageShape
        mask = m
    }

    public func apply(_ x: Tensor) -> Tensor {
        precondition(x.count == inputShape.reduce(1, *), "Inpainting: input \(x.shape), expected \(inputShape)")
        return masked(x.data, shape: outputShape)
    }

    public func vjp(at x: Tensor, cotangent: Tensor) -> Tensor {
        precondition(cotangent.count == inputShape.reduce(1, *), "Inpainting: cotangent \(cotangent.shape)")
        return masked(cotangent.data, shape: inputShape)
    }

    private func masked(_ v: UnsafePointer<Float>, shape: [Int]) -> Tensor {
        let hw = inputShape[1] * inputShape[2]
        let out = Tensor(shape: shape, zeroed: false)
        mask.withUnsafeBufferPointer { m in
            for c in 0..<inputShape[0] {
                let src = v + c * hw, dst = out.data + c * hw
                var i = 0
                while i < hw { dst[i] = m[i] * src[i]; i &+= 1 }
            }
        }
        return out
    }
}
