import Foundation
import XCTest

@testable import DMiloKernels

/// The vectorisable exp and the SIMD reductions behind SiLU, softmax and GroupNorm, against Float64.
final class FastMathTests: XCTestCase {
    func testFastExpIsWithinTwoUlpOverTheFloatRange() {
        var x: Float = -87
        var worst: Float = 0
        while x < 88.5 {
            let e = Foundation.exp(Double(x))
            worst = max(worst, Float(abs(Double(fastExp(x)) - e) / e))
            x += 0.0137
        }
        XCTAssertLessThan(worst, 2 * Float.ulpOfOne)
        XCTAssertEqual(fastExp(0), 1)
        XCTAssertTrue(fastExp(-1000) >= 0 && fastExp(-1000) < 1e-37, "underflow flushes toward 0")
        XCTAssertTrue(fastExp(1000).isFinite, "overflow clamps")
        XCTAssertTrue(fastExp(.nan).isNaN)
    }

    func testBlockReductionsMatchFloat64() {
        for n in [0, 1, 7, 8, 9, 255, 256, 257, 1000, 4099] {
            let x = randn(n, seed: UInt64(n)).map { 5 + $0 }, y = randn(n, seed: UInt64(n) + 1)
            let xd = toD(x), yd = toD(y)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeBufferPointer { yp in
                    let px = xp.baseAddress ?? UnsafePointer(bitPattern: 64)!, py = yp.baseAddress ?? UnsafePointer(bitPattern: 64)!
                    let sum = xd.reduce(0, +)
                    XCTAssertEqual(blockSum(px, n), sum, accuracy: 1e-6 * (abs(sum) + 1), "sum n=\(n)")
                    let c: Float = 5
                    let ssd = xd.map { ($0 - 5) * ($0 - 5) }.reduce(0, +)
                    XCTAssertEqual(blockSumSquaredDeviation(px, n, c), ssd, accuracy: 1e-5 * (ssd + 1), "ssd n=\(n)")
                    let (a, b) = blockSumAndCenteredDot(py, px, n, c)
                    XCTAssertEqual(a, yd.reduce(0, +), accuracy: 1e-5 * Double(n + 1), "Σg n=\(n)")
                    XCTAssertEqual(b, zip(yd, xd).map { $0 * ($1 - 5) }.reduce(0, +), accuracy: 1e-5 * Double(n + 1), "Σg(x−c) n=\(n)")
                    XCTAssertEqual(
                        Double(blockDot(px, py, n)), zip(xd, yd).map { $0 * $1 }.reduce(0, +),
                        accuracy: 1e-5 * Double(n + 1), "dot n=\(n)")
                    if n > 0 { XCTAssertEqual(blockMax(px, n), x.max()!, "max n=\(n)") }
                }
            }
        }
    }
}
