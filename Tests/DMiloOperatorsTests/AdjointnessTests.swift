import DMiloKernels
import XCTest

@testable import DMiloOperators

/// ⟨Ax, y⟩ = ⟨x, Aᵀy⟩ for every linear operator and configuration, on a non-square 3×24×40 image.
final class AdjointnessTests: XCTestCase {
    let shape = [3, 24, 40]
    let tolerance = 1e-5

    func check(_ op: any MeasurementOperator, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(op.isLinear, label, file: file, line: line)
        for seed: UInt64 in [1, 2] {
            let e = TestSupport.adjointMismatch(op, seed: seed)
            XCTAssertLessThan(e, tolerance, "\(label): adjoint mismatch \(e)", file: file, line: line)
        }
    }

    func testDenoise() throws { check(try Denoise(imageShape: shape), "denoise") }

    func testSuperResolution() throws {
        for f in [2, 4] {
            for k in SuperResolution.Kernel.allCases {
                check(try SuperResolution(factor: f, kernel: k, imageShape: shape), "SR x\(f) \(k)")
            }
        }
        // small images exercise repeated mirroring (taps reach beyond the whole image)
        check(try SuperResolution(factor: 4, imageShape: [1, 4, 8]), "SR x4 bicubic on 4x8")
        check(try SuperResolution(factor: 2, imageShape: [2, 2, 6]), "SR x2 bicubic on 2x6")
    }

    func testInpainting() throws {
        let mask = TestSupport.random([24, 40], seed: 9)
        for i in 0..<mask.count { mask[i] = mask[i] > 0 ? 1 : 0 }
        check(try Inpainting(mask: mask, imageShape: shape), "inpainting mask")
        check(try Inpainting(missingFraction: 0.7, maskSeed: 3, imageShape: shape), "inpainting random")
        check(try Inpainting(box: [5, 3, 20, 10], imageShape: shape), "inpainting box")
    }

    func testBlurOddEvenNonSymmetric() throws {
        for (kh, kw) in [(1, 1), (3, 3), (4, 4), (5, 5), (8, 8), (2, 5), (15, 15), (24, 24)] {
            let k = TestSupport.random([kh, kw], seed: UInt64(kh * 100 + kw))
            for i in 0..<k.count { k[i] = abs(k[i]) }
            k[0] += 0.5  // break any symmetry
            check(try Blur(kernel: k, imageShape: shape), "blur \(kh)x\(kw)")
        }
        // kernel as large as the image allows: k/2 = H-1 reflects twice over
        let big = Tensor(shape: [9, 9], repeating: 1)
        check(try Blur(kernel: big, imageShape: [2, 5, 7]), "blur 9x9 on 5x7")
    }

    func testGaussianAndMotionBlur() throws {
        check(try GaussianBlur(size: 9, sigma: 2.0, imageShape: shape), "gaussian 9")
        check(try MotionBlur(size: 15, intensity: 0.7, kernelSeed: 5, imageShape: shape), "motion 15")
        let k = TestSupport.random([6, 6], seed: 77)
        for i in 0..<k.count { k[i] = abs(k[i]) }
        check(try MotionBlur(kernel: k, imageShape: shape), "motion file 6x6")
    }

    /// The paper geometry (pad ⌊k/2⌋ everywhere, valid correlation; output one larger for even kernels).
    func testPaperGeometryBlurs() throws {
        for (kh, kw) in [(4, 4), (5, 5), (2, 5), (8, 8)] {
            let k = TestSupport.random([kh, kw], seed: UInt64(kh * 10 + kw))
            for i in 0..<k.count { k[i] = abs(k[i]) }
            k[0] += 0.5
            check(try Blur(kernel: k, imageShape: shape, geometry: .paper), "paper blur \(kh)x\(kw)")
        }
        check(try GaussianBlur(size: 9, sigma: 2.0, imageShape: shape, geometry: .paper), "paper gaussian 9")
        check(try MotionBlur(size: 15, intensity: 0.7, kernelSeed: 5, imageShape: shape, geometry: .paper), "paper motion 15")
    }

    func testCompressedSensing() throws {
        check(try CompressedSensing(ratio: 0.1, matrixSeed: 4, imageShape: shape), "cs ratio 0.1")
        let m = TestSupport.random([37, 3 * 24 * 40], seed: 12)
        check(try CompressedSensing(matrix: m, imageShape: shape), "cs matrix")
    }

    /// The check itself must catch a wrong adjoint: Blur's vjp without the reflection fold would fail.
    func testCheckDetectsWrongAdjoint() throws {
        final class Broken: MeasurementOperator {
            let inner: Blur
            init(_ b: Blur) { inner = b }
            var name: String { "broken" }
            var inputShape: [Int] { inner.inputShape }
            var outputShape: [Int] { inner.outputShape }
            var isLinear: Bool { true }
            func apply(_ x: Tensor) -> Tensor { inner.apply(x) }
            // correlation with the same (unflipped) kernel is not the transpose for a non-symmetric kernel
            func vjp(at x: Tensor, cotangent: Tensor) -> Tensor { inner.apply(cotangent) }
        }
        let k = Tensor(shape: [3, 3], values: [0, 0, 0, 0, 0.2, 0.8, 0, 0, 0])
        let e = TestSupport.adjointMismatch(Broken(try Blur(kernel: k, imageShape: shape)))
        XCTAssertGreaterThan(e, 1e-2)
    }
}
