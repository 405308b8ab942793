import DMiloKernels
import XCTest

@testable import DMiloOperators

final class HDRTests: XCTestCase {
    func testApplyClips() throws {
        let op = try HDR(gain: 2, imageShape: [1, 1, 4])
        XCTAssertEqual(op.apply(Tensor(shape: [1, 1, 4], values: [-0.9, -0.2, 0.3, 0.5])).array, [-1, -0.4, 0.6, 1])
        XCTAssertFalse(op.isLinear)
    }

    /// VJP against central finite differences of L(x) = Σ c ⊙ A(x), away from the saturation kinks.
    func testVJPMatchesFiniteDifferences() throws {
        let shape = [2, 4, 5], gain = 3.0
        let op = try HDR(gain: gain, imageShape: shape)
        let x = TestSupport.random(shape, seed: 5)
        for i in 0..<x.count {
            x[i] *= 0.5
            if abs(abs(Float(gain) * x[i]) - 1) < 0.1 { x[i] += 0.1 }  // keep 2·eps·gain clear of ±1
        }
        let c = TestSupport.random(shape, seed: 6)
        let g = op.vjp(at: x, cotangent: c)
        let eps: Float = 1e-2
        func loss(_ v: Tensor) -> Double { op.apply(v).dot(c) }
        var saturated = 0
        for i in 0..<x.count {
            let xp = x.copy(), xm = x.copy()
            xp[i] += eps; xm[i] -= eps
            let fd = (loss(xp) - loss(xm)) / Double(2 * eps)
            XCTAssertEqual(Double(g[i]), fd, accuracy: 1e-3 * max(1, abs(fd)), "element \(i)")
            if abs(Float(gain) * x[i]) > 1 { saturated += 1; XCTAssertEqual(g[i], 0) }
        }
        XCTAssertGreaterThan(saturated, 3, "the test must cover saturated pixels")
        XCTAssertLessThan(saturated, x.count - 3, "and unsaturated ones")
    }

    /// PyTorch clamp convention: the boundary itself passes the gradient.
    func testBoundaryPassesGradient() throws {
        let op = try HDR(gain: 2, imageShape: [1, 1, 3])
        let g = op.vjp(at: Tensor(shape: [1, 1, 3], values: [0.5, -0.5, 0.51]), cotangent: Tensor(shape: [1, 1, 3], repeating: 1))
        XCTAssertEqual(g.array, [2, 2, 0])
    }

    func testRejectsBadGain() {
        for gain in [0.0, -1, .nan, .infinity, 1e300] {
            XCTAssertThrowsError(try HDR(gain: gain, imageShape: [1, 2, 2]), "\(gain)")
        }
    }
}
