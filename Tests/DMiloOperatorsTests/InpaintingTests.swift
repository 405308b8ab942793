import DMiloKernels
import XCTest

@testable import DMiloOperators

final class InpaintingTests: XCTestCase {
    func testRandomMaskHasExactlyFloorFractionMissingAndIsSeeded() throws {
        // official setting: int(0.7·256·256) = 45875 missing
        let op = try Inpainting(missingFraction: 0.7, maskSeed: 123, imageShape: [3, 256, 256])
        XCTAssertEqual(256 * 256 - op.observedCount, 45875)
        let again = try Inpainting(missingFraction: 0.7, maskSeed: 123, imageShape: [3, 256, 256])
        XCTAssertEqual(op.mask, again.mask)
        let other = try Inpainting(missingFraction: 0.7, maskSeed: 124, imageShape: [3, 256, 256])
        XCTAssertNotEqual(op.mask, other.mask)
        // floor, not round: 0.29·100 = 28.999… → 28 (as Python's int())
        XCTAssertEqual(100 - (try Inpainting(missingFraction: 0.29, maskSeed: 0, imageShape: [1, 10, 10])).observedCount, 28)
        XCTAssertEqual((try Inpainting(missingFraction: 0, maskSeed: 0, imageShape: [1, 10, 10])).observedCount, 100)
        // missing pixels are spread over the image (not a prefix of the scan order)
        let firstRow = op.mask[0..<256].filter { $0 == 0 }.count
        XCTAssertGreaterThan(firstRow, 130); XCTAssertLessThan(firstRow, 230)
    }

    func testSameMaskOnAllChannelsAndZeroesMissing() throws {
        let op = try Inpainting(box: [1, 2, 3, 1], imageShape: [2, 4, 5])
        let y = op.apply(Tensor(shape: [2, 4, 5], repeating: 1))
        var expected = [Float](repeating: 1, count: 20)
        for c in 1...3 { expected[2 * 5 + c] = 0 }  // row 2, columns 1…3
        XCTAssertEqual(y.array, expected + expected)
    }

    func testMaskFromFileNonzeroIsObserved() throws {
        let m = Tensor(shape: [1, 2, 3], values: [0, 255, -1, 0.5, 0, 0])
        let op = try Inpainting(mask: m, imageShape: [1, 2, 3])
        XCTAssertEqual(op.mask, [0, 1, 1, 1, 0, 0])
        XCTAssertThrowsError(try Inpainting(mask: Tensor(shape: [3, 2], repeating: 1), imageShape: [1, 2, 3])) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "file.invalid")
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.mask")
        }
        let bad = Tensor(shape: [2, 3], repeating: 1); bad[1] = .infinity
        XCTAssertThrowsError(try Inpainting(mask: bad, imageShape: [1, 2, 3]))
    }

    func testBoxMustLieInsideImage() {
        XCTAssertNoThrow(try Inpainting(box: [0, 0, 40, 24], imageShape: [3, 24, 40]))
        for box in [[1, 0, 40, 24], [0, 0, 0, 5], [-1, 0, 2, 2], [0, 20, 5, 5], [0, 0, 5]] {
            XCTAssertThrowsError(try Inpainting(box: box, imageShape: [3, 24, 40]), "\(box)") {
                XCTAssertEqual(($0 as? OperatorError)?.field, "operator.box")
            }
        }
        XCTAssertThrowsError(try Inpainting(missingFraction: 1, maskSeed: 0, imageShape: [1, 4, 4]))
        XCTAssertThrowsError(try Inpainting(missingFraction: -0.1, maskSeed: 0, imageShape: [1, 4, 4]))
    }
}

extension Inpainting {
    /// Number of observed pixels (per channel).
    var observedCount: Int { mask.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }
}
