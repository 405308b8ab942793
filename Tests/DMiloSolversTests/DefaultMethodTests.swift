import DMiloOperators
import XCTest

@testable import DMiloSolvers

/// The method a job gets without `solver.method`: the per-operator table of `SolverDefaults.method`, read off the
/// README's quality benchmark. A change to the table must come with new benchmark evidence.
final class DefaultMethodTests: XCTestCase {
    func testDefaultMethodPerOperator() throws {
        let shape = [1, 32, 32]
        XCTAssertEqual(SolverDefaults.method(for: try SuperResolution(factor: 2, kernel: .box, imageShape: shape)), .dmiloPGD)
        XCTAssertEqual(SolverDefaults.method(for: try SuperResolution(factor: 2, kernel: .bicubic, imageShape: shape)), .dps)
        XCTAssertEqual(SolverDefaults.method(for: try SuperResolution(factor: 4, kernel: .bicubic, imageShape: shape)), .dmiloPGD)
        XCTAssertEqual(SolverDefaults.method(for: try Inpainting(missingFraction: 0.7, maskSeed: 1, imageShape: shape)), .dmiloPGD)
        XCTAssertEqual(SolverDefaults.method(for: try GaussianBlur(size: 9, sigma: 1.5, imageShape: shape)), .dmiloPGD)
        XCTAssertEqual(
            SolverDefaults.method(for: try MotionBlur(size: 9, intensity: 0.5, kernelSeed: 1, imageShape: shape)), .dmiloPGD)
        XCTAssertEqual(SolverDefaults.method(for: try CompressedSensing(ratio: 0.25, matrixSeed: 1, imageShape: shape)), .dps)
        XCTAssertEqual(SolverDefaults.method(for: try HDR(gain: 2, imageShape: shape)), .dps)
        XCTAssertEqual(SolverDefaults.method(for: try Denoise(imageShape: shape)), .dmiloPGD)
    }
}
