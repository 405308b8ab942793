import DMiloKernels
import XCTest

@testable import DMiloImage

/// The montage header (what the picture is: job, operator, method, budget, why it stopped, quality) and the hatch
/// of unobserved pixels (never a gray that an image value could produce).
final class MontageHeaderTests: XCTestCase {
    private func px(_ m: PNGImage, _ x: Int, _ y: Int, _ k: Int = 0) -> UInt16 { m.samples[(y * m.width + x) * m.channels + k] }

    func testHeaderLinesWrapToTheWidthAndAddHeight() throws {
        let x = Tensor(shape: [1, 32, 32], repeating: 0)
        let plain = try Montage.make(panels: [x, x], labels: ["A", "B"], scale: 4, separator: 4)
        let fields = [
            "JOB SR4-X", "SUPER_RESOLUTION (FACTOR 4)", "DMILO-PGD", "495/600 UNET EVALS", "STOPPED BY BUDGET",
            "PSNR 20.35 DB", "SSIM 0.669",
        ]
        let lines = Montage.wrap(fields, width: plain.width - 8 - 2, scale: 1)
        XCTAssertGreaterThan(lines.count, 1, "too long for one line at this width")
        XCTAssertEqual(lines.joined(separator: "  "), fields.joined(separator: "  "), "wrapping keeps every field in order")
        XCTAssertTrue(lines.allSatisfy { BitmapFont.width(of: $0, scale: 1) <= plain.width - 10 })
        let m = try Montage.make(panels: [x, x], labels: ["A", "B"], scale: 4, separator: 4, header: fields)
        XCTAssertEqual(m.width, plain.width)
        XCTAssertEqual(m.height, plain.height + lines.count * (BitmapFont.glyphHeight + 3))
        // Ink in every header line; the panels (mid-gray) start below it, where the plain montage's label strip was.
        for i in 0..<lines.count {
            let rows = (4 + i * 10)..<(4 + (i + 1) * 10)
            XCTAssertGreaterThan(rows.flatMap { r in (0..<m.width).map { self.px(m, $0, r) } }.filter { $0 == 0 }.count, 20, "line \(i)")
        }
        let shift = m.height - plain.height
        let labelStrip = BitmapFont.glyphHeight + 4
        XCTAssertEqual(px(m, 10, 4 + labelStrip + shift), 128, "first panel row")
        XCTAssertEqual(px(m, 10, 4 + labelStrip + shift - 1), 255, "label strip above it")
        XCTAssertEqual(px(m, 10, m.height - 5), 128)
    }

    func testUnobservedPixelsAreHatched() throws {
        let y = Tensor(shape: [1, 8, 8], repeating: 0)  // mid-gray data everywhere, missing or not
        var mask = [Float](repeating: 1, count: 64)
        for r in 2..<4 { for c in 3..<6 { mask[r * 8 + c] = 0 } }
        let m = try Montage.make(panels: [y], scale: 4, separator: 2, masks: [mask])
        XCTAssertEqual(m.height, 32 + 4)
        for r in 0..<32 {
            for c in 0..<32 {
                let (X, Y) = (2 + c, 2 + r)
                let missing = mask[(r / 4) * 8 + c / 4] == 0
                let expected: UInt16 = missing ? ((X + Y) % 4 == 0 ? 0 : 255) : 128
                XCTAssertEqual(px(m, X, Y), expected, "display pixel (\(c), \(r))")
            }
        }
        XCTAssertThrowsError(try Montage.make(panels: [y], masks: [[1, 0]]), "mask size must match the panel")
        XCTAssertThrowsError(try Montage.make(panels: [y, y], masks: [nil]), "one mask entry per panel")
    }
}
