import XCTest

@testable import DMiloKernels

final class TensorTests: XCTestCase {
    func testSeededRandomIsReproducibleAndStreamsDiffer() {
        var a = SeededRandom(seed: 7, stream: "mask"), b = SeededRandom(seed: 7, stream: "mask")
        var c = SeededRandom(seed: 7, stream: "noise")
        let xa = (0..<8).map { _ in a.next() }, xb = (0..<8).map { _ in b.next() }, xc = (0..<8).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
    }

    func testGaussianMoments() {
        var r = SeededRandom(seed: 1)
        let n = 200_000
        var s = 0.0, s2 = 0.0
        for _ in 0..<n { let g = r.gaussian(); s += g; s2 += g * g }
        XCTAssertEqual(s / Double(n), 0, accuracy: 0.01)
        XCTAssertEqual(s2 / Double(n), 1, accuracy: 0.01)
    }

    func testTensorBasics() {
        let t = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(t.norm, (91.0).squareRoot(), accuracy: 1e-9)
        let u = t.copy(); u.axpy(2, t)
        XCTAssertEqual(u.array, [3, 6, 9, 12, 15, 18])
        XCTAssertEqual(t.array, [1, 2, 3, 4, 5, 6])
    }
}
