import DMiloKernels

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// Gaussian blur: a ``Blur`` whose kernel is the outer product g ⊗ g with g(j) ∝ exp(−(j − size/2)² / (2σ²)),
/// j = 0 … size−1 (size odd, so the peak is the centre index), normalised to sum 1. y is (C, H, W).
/// The kernel being rank 1, it runs as two 1-D reflect correlations (same result as the 2-D one, 2k not k² MACs).
public final class GaussianBlur: Blur, @unchecked Sendable {
    public let size: Int
    public let sigma: Double

    /// - Parameters: size: odd, 1 … 255, size/2 < H and W; sigma: finite and > 0.
    public init(size: Int, sigma: Double, imageShape: [Int], geometry: BlurGeometry = .same) throws {
        self.size = size
        self.sigma = sigma
        let k = try GaussianBlur.kernel(size: size, sigma: sigma)  // validates size and sigma first
        let g = GaussianBlur.profile(size: size, sigma: sigma)
        try super.init(
            name: "gaussian_blur", kernel: k, imageShape: imageShape, field: "operator.size", factors: (g, g),
            geometry: geometry)
    }

    /// The normalised (size, size) kernel.
    public static func kernel(size: Int, sigma: Double) throws -> Tensor {
        guard size >= 1, size <= 255, size % 2 == 1 else {
            throw OperatorError.invalid("operator.size", "gaussian_blur size must be an odd integer in 1...255, got \(size)")
        }
        guard sigma.isFinite, sigma > 0 else {
            throw OperatorError.invalid("operator.sigma", "gaussian_blur sigma must be a finite number > 0, got \(sigma)")
        }
        let g = profile(size: size, sigma: sigma)
        let s = g.reduce(0, +)
        var values = [Float](repeating: 0, count: size * size)
        for a in 0..<size { for b in 0..<size { values[a * size + b] = Float(g[a] * g[b] / (s * s)) } }
        return Tensor(shape: [size, size], values: values)
    }

    /// Unnormalised 1-D profile exp(−(j − size/2)² / (2σ²)).
    static func profile(size: Int, sigma: Double) -> [Double] {
        (0..<size).map { j -> Double in
            let t = Double(j - size / 2) / sigma  // divide first: no 0/0 for tiny sigma
            return exp(-t * t / 2)
        }
    }
}
