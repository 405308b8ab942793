import DMiloKernels
import XCTest

@testable import DMiloImage

final class MontageTests: XCTestCase {
    /// Value at (x, y, channel k) of an 8-bit image.
    private func px(_ m: PNGImage, _ x: Int, _ y: Int, _ k: Int = 0) -> UInt16 { m.samples[(y * m.width + x) * m.channels + k] }

    /// measurement (3, 8, 8) | reconstruction (3, 32, 32) | truth (1, 32, 32) at scale 2, separator 3:
    /// every panel 64 px tall, the 8×8 one upscaled ×8, gray expanded to RGB, separators white.
    func testMontageGeometryAndUpscaling() throws {
        let small = Tensor(shape: [3, 8, 8], repeating: -1)  // black
        small[0 * 64 + 2 * 8 + 5] = 1  // red channel of pixel (y 2, x 5)
        let recon = Tensor(shape: [3, 32, 32], repeating: 0)  // mid gray 128
        let truth = Tensor(shape: [1, 32, 32], repeating: 1)  // white gray panel
        truth[31 * 32 + 0] = -1  // bottom-left pixel black
        let m = try Montage.make(panels: [small, recon, truth], scale: 2, separator: 3)
        XCTAssertEqual(m.channels, 3)
        XCTAssertEqual(m.bitDepth, 8)
        XCTAssertEqual(m.height, 64 + 2 * 3)
        XCTAssertEqual(m.width, 3 * 64 + 4 * 3)
        // Panel 1 at x 3..<67: the marked pixel covers an 8×8 block at (3 + 40, 3 + 16).
        for (x, y) in [(43, 19), (50, 26)] {
            XCTAssertEqual([px(m, x, y, 0), px(m, x, y, 1), px(m, x, y, 2)], [255, 0, 0])
        }
        XCTAssertEqual(px(m, 42, 19, 0), 0)
        XCTAssertEqual(px(m, 51, 19, 0), 0)
        XCTAssertEqual(px(m, 43, 27, 0), 0)
        // Separators and frame are white.
        for x in [0, 2, 67, 69, 134, 136, 203, 205] { XCTAssertEqual(px(m, x, 30, 1), 255, "x \(x)") }
        // Panel 2 gray 128; panel 3 (gray) replicated into RGB, its bottom-left pixel a 2×2 black block.
        XCTAssertEqual(px(m, 70, 3, 2), 128)
        XCTAssertEqual([px(m, 137, 66, 0), px(m, 138, 65, 1), px(m, 137, 65, 2)], [0, 0, 0])
        XCTAssertEqual(px(m, 139, 66, 0), 255)
    }

    func testAllGrayMontageIsGrayAndNonMultipleHeightsAreCentred() throws {
        let a = Tensor(shape: [1, 10, 4], repeating: -1)
        let b = Tensor(shape: [12, 5], repeating: -1)  // (H, W) counts as gray
        let m = try Montage.make(panels: [a, b], scale: 1, separator: 0)
        XCTAssertEqual(m.channels, 1)
        XCTAssertEqual(m.height, 12)
        XCTAssertEqual(m.width, 4 + 5)  // factor 12/10 = 1 for the first panel
        XCTAssertEqual(px(m, 0, 0), 255)  // 10-row panel centred: rows 1...10
        XCTAssertEqual(px(m, 0, 1), 0)
        XCTAssertEqual(px(m, 0, 10), 0)
        XCTAssertEqual(px(m, 0, 11), 255)
    }

    /// A compressed-sensing measurement (m,) becomes a display-sized mid-gray panel with a black caption.
    func testOneDimensionalMeasurementPanel() throws {
        let y = Tensor(shape: [300], repeating: 0.3)
        let x = Tensor(shape: [1, 32, 32], repeating: 1)
        let m = try Montage.make(panels: [y, x], labels: ["MEASUREMENT", "RECON"], scale: 4, separator: 2)
        let strip = (7 + 4) * (128 / 96)
        XCTAssertEqual(m.height, 128 + strip + 4)
        XCTAssertEqual(m.width, 128 + 128 + 3 * 2)
        let panel = (0..<128).flatMap { r in (0..<128).map { c in self.px(m, 2 + c, 2 + strip + r) } }
        let gray = panel.filter { $0 == 128 }.count, ink = panel.filter { $0 == 0 }.count
        XCTAssertEqual(gray + ink, panel.count, "only fill and caption ink")
        XCTAssertGreaterThan(ink, 100, "caption drawn")
        XCTAssertEqual(px(m, 2, 2 + strip), 128)
        // Labels: black ink in the strip above each panel, none inside the image panel.
        let stripInk = (2..<(2 + strip)).flatMap { r in (0..<m.width).map { self.px(m, $0, r) } }.filter { $0 == 0 }.count
        XCTAssertGreaterThan(stripInk, 50)
        XCTAssertTrue((0..<128).allSatisfy { r in (0..<128).allSatisfy { self.px(m, 132 + $0, 2 + strip + r) == 255 } })
    }

    func testGridLayout() throws {
        let images = (0..<5).map { i in Tensor(shape: [3, 4, 6], repeating: Float(i) / 2 - 1) }
        let g = try Montage.grid(images: images, columns: 2, scale: 3, separator: 1)
        XCTAssertEqual(g.width, 1 + 2 * (18 + 1))
        XCTAssertEqual(g.height, 1 + 3 * (12 + 1))
        // Image i at column i % 2, row i / 2; value (i/2 - 1) -> round((i/4) * 255).
        for i in 0..<5 {
            let (x, y) = (1 + (i % 2) * 19, 1 + (i / 2) * 13)
            let expected = UInt16((Float(i) / 4 * 255).rounded(.toNearestOrAwayFromZero))
            XCTAssertEqual(px(g, x, y, 1), expected)
            XCTAssertEqual(px(g, x + 17, y + 11, 2), expected)
            XCTAssertEqual(px(g, x + 18, y + 11, 2), 255, "separator after image \(i)")
        }
        XCTAssertEqual(px(g, 20, 27), 255)  // empty sixth cell
        // Batch form gives the same picture.
        let batch = Tensor(shape: [5, 3, 4, 6], values: images.flatMap(\.array))
        XCTAssertEqual(try Montage.grid(batch: batch, columns: 2, scale: 3, separator: 1), g)
    }

    func testBadPanelsAreErrors() {
        XCTAssertThrowsError(try Montage.make(panels: []))
        XCTAssertThrowsError(try Montage.make(panels: [Tensor(shape: [2, 4, 4])]))
        XCTAssertThrowsError(try Montage.make(panels: [Tensor(shape: [1, 4, 4])], labels: ["a", "b"]))
        XCTAssertThrowsError(try Montage.make(panels: [Tensor(shape: [1, 4, 4])], scale: 0))
        XCTAssertThrowsError(try Montage.grid(images: [Tensor(shape: [1, 4, 4]), Tensor(shape: [1, 4, 5])], columns: 2))
        XCTAssertThrowsError(try Montage.grid(images: [Tensor(shape: [1, 4, 4])], columns: 0))
        XCTAssertThrowsError(try Montage.grid(images: [Tensor(shape: [7])], columns: 1))
    }

    /// Every glyph is 7 rows of 5 columns (catches typos in the font table).
    func testFontGlyphsAreWellFormed() {
        XCTAssertGreaterThanOrEqual(BitmapFont.glyphs.count, 50)
        for (c, text) in BitmapFont.source {
            let rows = text.split(separator: " ")
            XCTAssertEqual(rows.count, 7, "\(c)")
            XCTAssertTrue(rows.allSatisfy { $0.count == 5 && $0.allSatisfy { "#.".contains($0) } }, "\(c)")
        }
        XCTAssertEqual(BitmapFont.glyph("a"), BitmapFont.glyph("A"))
        XCTAssertEqual(BitmapFont.glyph("€"), BitmapFont.glyph("?"))
    }

    /// Writes a labelled montage, a font sheet, a grid and a 16-bit RGB file and reads each back. They go to a
    /// scratch directory, or to $DMILO_MONTAGE_PREVIEW for eyeballing and for checking the 16-bit file with a
    /// foreign reader (pypng: sample (x, y, c) = (4099·(x + 7y) + 1000c) mod 65536).
    func testPreviewFilesRoundTrip() throws {
        let dir = try ProcessInfo.processInfo.environment["DMILO_MONTAGE_PREVIEW"] ?? scratchDirectory(self)
        let h = 32, w = 32
        let truth = Tensor(shape: [3, h, w])
        for c in 0..<3 {
            for y in 0..<h {
                for x in 0..<w {
                    truth[(c * h + y) * w + x] = sin(Float(x + 3 * c) / 5) * cos(Float(y) / 7)
                }
            }
        }
        let lowres = Tensor(shape: [3, h / 4, w / 4])
        for c in 0..<3 {
            for y in 0..<(h / 4) {
                for x in 0..<(w / 4) {
                    lowres[(c * h / 4 + y) * w / 4 + x] = truth[(c * h + 4 * y) * w + 4 * x]
                }
            }
        }
        let text = "ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 -=.,:/()+%_|? psnr"
        var font = RasterCanvas(width: 3 * 6 * 28 + 6, height: 3 * 9 * 2 + 6, channels: 1, fill: 255)
        font.draw("ABCDEFGHIJKLMNOPQRSTUVWXYZ", x: 3, y: 3, scale: 3, maxWidth: font.width, ink: 0)
        font.draw("0123456789 -=.,:/()+%_|?", x: 3, y: 3 + 27, scale: 3, maxWidth: font.width, ink: 0)
        var samples = [UInt16]()
        for y in 0..<3 {
            for x in 0..<5 {
                for c in 0..<3 {
                    let v: Int = 4099 * (x + 7 * y) + 1000 * c
                    samples.append(UInt16(v % 65536))
                }
            }
        }
        let files: [(String, PNGImage)] = [
            (
                "montage-preview.png",
                try Montage.make(
                    panels: [lowres, Tensor(shape: [100]), truth, truth],
                    labels: ["Measurement", "CS y", "PSNR 31.2 dB", text], scale: 4)
            ),
            ("font-preview.png", try font.image()),
            ("grid-preview.png", try Montage.grid(images: Array(repeating: truth, count: 5), columns: 3, scale: 2)),
            ("rgb16-preview.png", try PNGImage(width: 5, height: 3, channels: 3, bitDepth: 16, samples: samples)),
        ]
        for (name, image) in files {
            try image.write(to: dir + "/" + name)
            XCTAssertEqual(try PNGImage.read(from: dir + "/" + name), image, name)
        }
        XCTAssertEqual([files[0].1.width, files[0].1.height], [4 * 128 + 5 * 4, 128 + 11 + 2 * 4])
    }
}
