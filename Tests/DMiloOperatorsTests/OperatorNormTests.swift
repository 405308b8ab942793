import DMiloKernels
import XCTest

@testable import DMiloOperators

final class OperatorNormTests: XCTestCase {
    func testKnownNorms() throws {
        let shape = [3, 24, 40]
        XCTAssertEqual(try OperatorNorm.estimate(Denoise(imageShape: shape)), 1, accuracy: 1e-4)
        XCTAssertEqual(try OperatorNorm.estimate(Inpainting(missingFraction: 0.5, maskSeed: 1, imageShape: shape)), 1, accuracy: 1e-4)
        // box SR: A Aᵀ = I / f², so ‖A‖ = 1/f
        XCTAssertEqual(try OperatorNorm.estimate(SuperResolution(factor: 4, kernel: .box, imageShape: shape)), 0.25, accuracy: 1e-4)
    }

    /// A matrix whose singular values are known: rows are scaled unit vectors, ‖A‖ = largest scale.
    func testMatrixWithKnownSingularValues() throws {
        let n = 24
        let m = Tensor(shape: [4, n])
        for (r, (col, s)) in [(3, 0.5), (7, 2.5), (11, 1.0), (20, 2.4)].enumerated() { m[r * n + col] = Float(s) }
        let op = try CompressedSensing(matrix: m, imageShape: [2, 3, 4])
        XCTAssertEqual(try OperatorNorm.estimate(op, maxIterations: 500, tolerance: 1e-9), 2.5, accuracy: 1e-3)
    }

    func testRefusesNonlinear() {
        XCTAssertThrowsError(try OperatorNorm.estimate(HDR(gain: 2, imageShape: [1, 2, 2])))
    }
}
