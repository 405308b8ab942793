import DMiloKernels
import XCTest

@testable import DMiloOperators

final class SuperResolutionTests: XCTestCase {
    /// docs/algorithms.md §6.1: the 16 ×4 weights, the same for every output pixel, taps 4o−6 … 4o+9.
    func testBicubicX4WeightsMatchOfficialResizer() {
        let half: [Float] = [-0.001709, -0.010986, -0.018311, -0.011963, 0.022705, 0.097412, 0.181885, 0.240967]
        let expected = half + half.reversed()
        let axis = SuperResolution.bicubicAxis(inputLength: 256, factor: 4)
        XCTAssertEqual(axis.taps, 16)
        XCTAssertEqual(axis.outputLength, 64)
        for o in [2, 17, 40, 61] {  // interior outputs: no mirroring
            for t in 0..<16 {
                XCTAssertEqual(axis.indices[o * 16 + t], 4 * o - 6 + t)
                XCTAssertEqual(axis.weights[o * 16 + t], expected[t], accuracy: 1e-6, "o=\(o) t=\(t)")
            }
        }
        // border: taps −6 … −1 mirror half-sample-symmetrically to 5 … 0; 256 … 261 → 255 … 250
        XCTAssertEqual(Array(axis.indices[0..<7]), [5, 4, 3, 2, 1, 0, 0])
        XCTAssertEqual(Array(axis.indices[63 * 16 + 10..<63 * 16 + 16]), [255, 254, 253, 252, 251, 250])
    }

    /// Dense 1-D matrices against an independent numpy port of MATLAB imresize `contributions()` (×2 and ×4,
    /// lengths where the taps wrap around the whole signal).
    func testBicubicMatricesMatchMatlabContributions() throws {
        let cases = try XCTUnwrap(TestSupport.fixtures["bicubic"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let length = try XCTUnwrap(c["length"] as? Int), f = try XCTUnwrap(c["factor"] as? Int)
            let expected = try TestSupport.floats(c["matrix"])
            let got = SuperResolution.bicubicAxis(inputLength: length, factor: f).denseMatrix.map(Float.init)
            XCTAssertEqual(got.count, expected.count)
            XCTAssertLessThan(TestSupport.maxAbsDiff(got, expected), 1e-6, "L=\(length) f=\(f)")
        }
    }

    /// 2-D: H then W, C order, on a non-square image.
    func testBicubicImageMatchesReference() throws {
        let c = try XCTUnwrap(TestSupport.fixtures["bicubic_image"] as? [String: Any])
        let shape = try TestSupport.ints(c["shape"])
        let op = try SuperResolution(factor: 2, imageShape: shape)
        XCTAssertEqual(op.outputShape, [2, 4, 6])
        let y = op.apply(Tensor(shape: shape, values: try TestSupport.floats(c["x"])))
        XCTAssertLessThan(TestSupport.maxAbsDiff(y.array, try TestSupport.floats(c["y"])), 1e-5)
    }

    /// Constants stay constant (weights sum to 1, mirroring keeps it so at borders).
    func testBicubicPreservesConstants() throws {
        let op = try SuperResolution(factor: 4, imageShape: [3, 24, 40])
        let y = op.apply(Tensor(shape: [3, 24, 40], repeating: 0.3))
        for v in y.array { XCTAssertEqual(v, 0.3, accuracy: 1e-6) }
    }

    func testBoxOnKnownImage() throws {
        // 1×4×4 image 0…15: 2×2 block means are (0+1+4+5)/4 = 2.5, 4.5, 10.5, 12.5
        let op = try SuperResolution(factor: 2, kernel: .box, imageShape: [1, 4, 4])
        let y = op.apply(Tensor(shape: [1, 4, 4], values: (0..<16).map(Float.init)))
        XCTAssertEqual(y.shape, [1, 2, 2])
        XCTAssertEqual(y.array, [2.5, 4.5, 10.5, 12.5])
        // the adjoint spreads c/f² over each block
        let g = op.adjoint(Tensor(shape: [1, 2, 2], values: [4, 8, 12, 16]))
        XCTAssertEqual(g.array, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    func testBoxMatchesNumpyBlockMean() throws {
        for c in try XCTUnwrap(TestSupport.fixtures["box_sr"] as? [[String: Any]]) {
            let shape = try TestSupport.ints(c["shape"]), f = try XCTUnwrap(c["factor"] as? Int)
            let op = try SuperResolution(factor: f, kernel: .box, imageShape: shape)
            let y = op.apply(Tensor(shape: shape, values: try TestSupport.floats(c["x"])))
            XCTAssertLessThan(TestSupport.maxAbsDiff(y.array, try TestSupport.floats(c["y"])), 1e-6)
        }
    }

    func testRejectsBadFactorAndIndivisibleImage() {
        XCTAssertThrowsError(try SuperResolution(factor: 3, imageShape: [3, 24, 24])) {
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.factor")
        }
        XCTAssertThrowsError(try SuperResolution(factor: 4, imageShape: [3, 24, 42])) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "manifest.invalid")
        }
    }
}

extension AxisResampling {
    /// Dense (outputLength × inputLength) matrix, row-major.
    var denseMatrix: [Double] {
        var m = [Double](repeating: 0, count: outputLength * inputLength)
        for o in 0..<outputLength {
            for t in 0..<taps { m[o * inputLength + indices[o * taps + t]] += Double(weights[o * taps + t]) }
        }
        return m
    }
}
