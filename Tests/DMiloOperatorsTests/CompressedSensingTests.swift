import DMiloKernels
import XCTest

@testable import DMiloOperators

final class CompressedSensingTests: XCTestCase {
    func testGaussianMatrixSizeStatisticsAndSeed() throws {
        let shape = [3, 24, 40]  // n = 2880
        let op = try CompressedSensing(ratio: 0.25, matrixSeed: 11, imageShape: shape)
        XCTAssertEqual(op.outputShape, [720])  // round(0.25·2880)
        let a = op.matrix.array
        let mean = a.reduce(0.0) { $0 + Double($1) } / Double(a.count)
        let variance = a.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(a.count) - mean * mean
        XCTAssertEqual(mean, 0, accuracy: 3e-3)
        XCTAssertEqual(variance * 720, 1, accuracy: 0.01)  // N(0, 1/m)
        XCTAssertEqual(try CompressedSensing(ratio: 0.25, matrixSeed: 11, imageShape: shape).matrix.array, a)
        XCTAssertNotEqual(try CompressedSensing(ratio: 0.25, matrixSeed: 12, imageShape: shape).matrix.array[0..<10], a[0..<10])
        XCTAssertEqual(try CompressedSensing(ratio: 0.0001, matrixSeed: 1, imageShape: shape).m, 1)  // at least one row
    }

    /// y = M vec(x) with x flattened in C order, against a direct loop.
    func testApplyIsMatrixTimesFlattenedImage() throws {
        let shape = [2, 3, 4]
        let m = TestSupport.random([5, 24], seed: 3)
        let op = try CompressedSensing(matrix: m, imageShape: shape)
        let x = TestSupport.random(shape, seed: 4)
        let y = op.apply(x)
        XCTAssertEqual(y.shape, [5])
        for r in 0..<5 {
            var s = 0.0
            for j in 0..<24 { s += Double(m[r * 24 + j]) * Double(x[j]) }
            XCTAssertEqual(Double(y[r]), s, accuracy: 1e-5)
        }
    }

    func testRefusesOversizedAndMisshapenMatrices() {
        XCTAssertThrowsError(try CompressedSensing(ratio: 0.5, matrixSeed: 0, imageShape: [3, 64, 64], maxElements: 1 << 20)) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "memory.budget")
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.ratio")
        }
        // default limit: 256×256×3 at ratio 0.1 would be 15 GiB
        XCTAssertThrowsError(try CompressedSensing(ratio: 0.1, matrixSeed: 0, imageShape: [3, 256, 256])) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "memory.budget")
        }
        XCTAssertThrowsError(try CompressedSensing(matrix: Tensor(shape: [4, 23]), imageShape: [2, 3, 4])) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "file.invalid")
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.matrix")
        }
        XCTAssertThrowsError(try CompressedSensing(matrix: Tensor(shape: [24]), imageShape: [2, 3, 4]))
        XCTAssertThrowsError(try CompressedSensing(ratio: 1.5, matrixSeed: 0, imageShape: [1, 4, 4]))
        XCTAssertThrowsError(try CompressedSensing(ratio: 0, matrixSeed: 0, imageShape: [1, 4, 4]))
    }
}
