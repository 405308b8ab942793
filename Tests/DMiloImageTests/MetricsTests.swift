import DMiloKernels
import XCTest

@testable import DMiloImage

/// PSNR/SSIM against scikit-image 0.26 values in Fixtures/metrics.json (Tools/make_image_fixtures.py).
final class MetricsTests: XCTestCase {
    private struct Pair {
        let name: String
        let truth: Tensor
        let estimate: Tensor
        let psnr: Double  // +inf where the fixture says null
        let ssim: Double
    }

    private func pairs() throws -> [Pair] {
        let spec = try Fixtures.json("metrics.json")
        return try XCTUnwrap(spec["pairs"] as? [[String: Any]]).map { p in
            let shape = try XCTUnwrap(p["shape"] as? [Int])
            let t = try XCTUnwrap(p["truth"] as? [Double]).map { Float($0) }
            let e = try XCTUnwrap(p["estimate"] as? [Double]).map { Float($0) }
            return Pair(
                name: try XCTUnwrap(p["name"] as? String), truth: Tensor(shape: shape, values: t),
                estimate: Tensor(shape: shape, values: e), psnr: (p["psnr"] as? Double) ?? .infinity,
                ssim: try XCTUnwrap(p["ssim"] as? Double))
        }
    }

    func testPSNRMatchesScikitImage() throws {
        let all = try pairs()
        XCTAssertEqual(all.count, 7)
        for p in all {
            let v = try Metrics.psnr(truth: p.truth, estimate: p.estimate)
            if p.psnr.isInfinite {
                XCTAssertEqual(v, .infinity, p.name)
            } else {
                XCTAssertEqual(v, p.psnr, accuracy: 1e-4, p.name)
            }
        }
    }

    func testSSIMMatchesScikitImage() throws {
        for p in try pairs() {
            XCTAssertEqual(try Metrics.ssim(truth: p.truth, estimate: p.estimate), p.ssim, accuracy: 1e-5, p.name)
        }
    }

    /// The fixtures include estimates outside [-1, 1]; check that they really exercise the clamp.
    func testFixturesExerciseClamping() throws {
        let clamped = try XCTUnwrap(try pairs().first { $0.name.hasSuffix("clamped") })
        XCTAssertTrue(clamped.estimate.array.contains { abs($0) > 1 })
        // A value beyond 1 counts as 1: PSNR of [2] vs [1] is infinite.
        XCTAssertEqual(try Metrics.psnr(truth: Tensor(shape: [1], values: [1]), estimate: Tensor(shape: [1], values: [2])), .infinity)
    }

    func testSSIMOfImageWithItselfIsOneAndShapesAreChecked() throws {
        var rng = SplitMix(seed: 3)
        let t = Tensor(shape: [3, 9, 8], values: (0..<216).map { _ in Float(rng.next() % 1000) / 500 - 1 })
        XCTAssertEqual(try Metrics.ssim(truth: t, estimate: t), 1, accuracy: 1e-12)
        XCTAssertThrowsError(try Metrics.ssim(truth: Tensor(shape: [1, 6, 9]), estimate: Tensor(shape: [1, 6, 9])))
        XCTAssertThrowsError(try Metrics.ssim(truth: t, estimate: Tensor(shape: [3, 8, 9])))
        XCTAssertThrowsError(try Metrics.psnr(truth: t, estimate: Tensor(shape: [216])))
        // (H,W) is one channel: same as (1,H,W).
        let a = Tensor(shape: [9, 8], values: Array(t.array[0..<72]))
        let b = Tensor(shape: [9, 8], values: Array(t.array[72..<144]))
        let a1 = a.copy().reshape([1, 9, 8]), b1 = b.copy().reshape([1, 9, 8])
        XCTAssertEqual(try Metrics.ssim(truth: a, estimate: b), try Metrics.ssim(truth: a1, estimate: b1))
    }
}
