import DMiloKernels
import XCTest

@testable import DMiloOperators

final class BlurTests: XCTestCase {
    /// Correlation with numpy.pad(mode="reflect") and centre k//2, for odd, even and rectangular kernels
    /// (non-symmetric, one negative entry), against numpy.
    func testBlurMatchesNumpyReflectCorrelation() throws {
        let cases = try XCTUnwrap(TestSupport.fixtures["blur"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 5)
        for c in cases {
            let shape = try TestSupport.ints(c["shape"]), kshape = try TestSupport.ints(c["kernel_shape"])
            let op = try Blur(kernel: Tensor(shape: kshape, values: try TestSupport.floats(c["kernel"])), imageShape: shape)
            let y = op.apply(Tensor(shape: shape, values: try TestSupport.floats(c["x"])))
            XCTAssertEqual(y.shape, shape)
            XCTAssertLessThan(TestSupport.maxAbsDiff(y.array, try TestSupport.floats(c["y"])), 1e-5, "kernel \(kshape)")
        }
    }

    /// A shifted delta moves the image: kernel 1 at (k/2, k/2 + 1) reads the right neighbour (correlation, no flip).
    func testDeltaKernelGeometry() throws {
        let k = Tensor(shape: [4, 4])
        k[2 * 4 + 3] = 5  // centre of a 4×4 kernel is (2, 2); this is one column right; sum normalised to 1
        let op = try Blur(kernel: k, imageShape: [1, 3, 4])
        let x = Tensor(shape: [1, 3, 4], values: (0..<12).map(Float.init))
        // row 0: x[0,1], x[0,2], x[0,3], reflect → x[0,2]
        XCTAssertEqual(op.apply(x).array, [1, 2, 3, 2, 5, 6, 7, 6, 9, 10, 11, 10])
    }

    /// Paper geometry = numpy.pad(x, k//2, mode="reflect") then a "valid" correlation, written out naively here:
    /// (H + 2⌊kh/2⌋ − kh + 1) × (W + 2⌊kw/2⌋ − kw + 1) outputs, 257 for a 64-tap kernel on 256 pixels.
    func testPaperGeometryIsPaddedValidCorrelation() throws {
        for (shape, kh, kw) in [([2, 7, 9], 4, 4), ([1, 6, 5], 5, 3), ([1, 9, 8], 2, 6)] {
            let k = TestSupport.random([kh, kw], seed: 5)
            k[0] += 3  // nonzero sum
            let op = try Blur(kernel: k, imageShape: shape, geometry: .paper)
            let (h, w) = (shape[1], shape[2]), (ph, pw) = (kh / 2, kw / 2)
            let (oh, ow) = (h + 2 * ph - kh + 1, w + 2 * pw - kw + 1)
            XCTAssertEqual(op.outputShape, [shape[0], oh, ow])
            let x = TestSupport.random(shape, seed: 6)
            let y = op.apply(x)
            let sum = (0..<k.count).reduce(0.0) { $0 + Double(k[$1]) }
            func reflect(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i) }
            var worst = 0.0
            for c in 0..<shape[0] {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var s = 0.0
                        for a in 0..<kh {
                            for b in 0..<kw {
                                s += Double(k[a * kw + b]) / sum * Double(x[(c * h + reflect(i + a - ph, h)) * w + reflect(j + b - pw, w)])
                            }
                        }
                        worst = max(worst, abs(s - Double(y[(c * oh + i) * ow + j])))
                    }
                }
            }
            XCTAssertLessThan(worst, 1e-5, "\(shape) kernel \(kh)x\(kw)")
        }
        XCTAssertEqual(try GaussianBlur(size: 9, sigma: 2, imageShape: [3, 256, 256], geometry: .paper).outputShape, [3, 256, 256])
        XCTAssertEqual(
            try Blur(kernel: Tensor(shape: [64, 64], repeating: 1), imageShape: [3, 256, 256], geometry: .paper).outputShape,
            [3, 257, 257])
        // the separable Gaussian path agrees with the direct one in this geometry too
        let g = try GaussianBlur(size: 7, sigma: 1.5, imageShape: [2, 12, 10], geometry: .paper)
        let d = try Blur(kernel: g.kernel, imageShape: [2, 12, 10], geometry: .paper)
        let x = TestSupport.random([2, 12, 10], seed: 8)
        XCTAssertLessThan(TestSupport.maxAbsDiff(g.apply(x).array, d.apply(x).array), 1e-5)
    }

    func testGaussianKernelMatchesFormula() throws {
        let c = try XCTUnwrap(TestSupport.fixtures["gaussian"] as? [String: Any])
        let size = try XCTUnwrap(c["size"] as? Int), sigma = try XCTUnwrap(c["sigma"] as? Double)
        let op = try GaussianBlur(size: size, sigma: sigma, imageShape: [1, 8, 8])
        XCTAssertLessThan(TestSupport.maxAbsDiff(op.kernel.array, try TestSupport.floats(c["kernel"])), 1e-7)
        XCTAssertEqual(op.name, "gaussian_blur")
    }

    /// The separable Gaussian path equals the direct 2-D correlation with the same kernel, forward and adjoint.
    func testGaussianSeparablePathEqualsDirect() throws {
        let shape = [3, 24, 40]
        for (size, sigma) in [(9, 2.0), (5, 1e-200), (47, 8.0)] {
            let g = try GaussianBlur(size: size, sigma: sigma, imageShape: shape)
            XCTAssertNotNil(g.separable)
            let direct = try Blur(kernel: g.kernel, imageShape: shape)
            XCTAssertNil(direct.separable)
            let x = TestSupport.random(shape, seed: 31)
            XCTAssertLessThan(TestSupport.maxAbsDiff(g.apply(x).array, direct.apply(x).array), 1e-5, "size \(size)")
            XCTAssertLessThan(TestSupport.maxAbsDiff(g.adjoint(x).array, direct.adjoint(x).array), 1e-5, "size \(size)")
        }
    }

    func testKernelIsNormalised() throws {
        let op = try Blur(kernel: Tensor(shape: [3, 3], repeating: 2), imageShape: [1, 5, 5])
        XCTAssertEqual(op.kernel.array.reduce(0, +), 1, accuracy: 1e-6)
        let y = op.apply(Tensor(shape: [1, 5, 5], repeating: -0.4))
        for v in y.array { XCTAssertEqual(v, -0.4, accuracy: 1e-6) }
    }

    func testRejectsBadKernels() {
        let zero = Tensor(shape: [3, 3], values: [1, -1, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertThrowsError(try Blur(kernel: zero, imageShape: [1, 8, 8])) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "file.invalid")
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.kernel")
        }
        let nan = Tensor(shape: [3, 3], repeating: 1); nan[4] = .nan
        XCTAssertThrowsError(try Blur(kernel: nan, imageShape: [1, 8, 8]))
        XCTAssertThrowsError(try Blur(kernel: Tensor(shape: [9], repeating: 1), imageShape: [1, 8, 8]))
        // k/2 must be < H and W: 16/2 = 8 is not < 8
        XCTAssertThrowsError(try Blur(kernel: Tensor(shape: [16, 16], repeating: 1), imageShape: [1, 8, 20])) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "file.invalid")
        }
        XCTAssertThrowsError(try GaussianBlur(size: 17, sigma: 1, imageShape: [1, 8, 20])) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "manifest.invalid")
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.size")
        }
        XCTAssertNoThrow(try Blur(kernel: Tensor(shape: [15, 15], repeating: 1), imageShape: [1, 8, 20]))
        XCTAssertThrowsError(try GaussianBlur(size: 4, sigma: 1, imageShape: [1, 8, 8]))
        XCTAssertThrowsError(try GaussianBlur(size: 5, sigma: 0, imageShape: [1, 8, 8]))
        XCTAssertThrowsError(try GaussianBlur(size: -3, sigma: 1, imageShape: [1, 8, 8]))
    }
}
