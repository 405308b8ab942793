import DMiloKernels
import Foundation
import XCTest

@testable import DMiloImage

final class PNGReadWriteTests: XCTestCase {
    /// Every fixture PNG written by pypng (Tools/make_image_fixtures.py) reads back with exactly the samples
    /// pypng was given: 16-bit values untouched (also with gAMA 1/2.2 and 1.0 in the file), palette expanded,
    /// 4-bit widened by bit replication, alpha dropped, interlacing undone; 16-bit partial transparency refused.
    func testFixturePNGsReadExactSamples() throws {
        let spec = try Fixtures.json("png.json")
        let files = try XCTUnwrap(spec["files"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(files.count, 15)
        for f in files {
            let name = try XCTUnwrap(f["file"] as? String)
            let path = try Fixtures.root.appendingPathComponent(name).path
            if f["error"] != nil {
                XCTAssertThrowsError(try PNGImage.read(from: path), name) { error in
                    let e = error as? PNGError
                    XCTAssertEqual(e?.kind, .unsupported, name)
                    XCTAssertTrue(e?.message.contains(path) ?? false, "message names the file: \(error)")
                }
                continue
            }
            let image = try PNGImage.read(from: path)
            let header = try PNGHeader.read(from: path)
            XCTAssertEqual(
                [header.width, header.height, header.channels, header.sampleBitDepth],
                [image.width, image.height, image.channels, image.bitDepth], name)
            XCTAssertEqual(image.width, f["width"] as? Int, name)
            XCTAssertEqual(image.height, f["height"] as? Int, name)
            XCTAssertEqual(image.channels, f["channels"] as? Int, name)
            XCTAssertEqual(image.bitDepth, f["bit_depth"] as? Int, name)
            let expected = try XCTUnwrap(f["samples"] as? [Int]).map { UInt16($0) }
            XCTAssertEqual(image.samples, expected, name)
        }
    }

    func testRoundTripsAreExact() throws {
        let dir = try scratchDirectory(self)
        var rng = SplitMix(seed: 1)
        for (channels, depth) in [(1, 8), (3, 8), (1, 16), (3, 16)] {
            let (w, h) = (13, 7)
            let maxV = (1 << depth) - 1
            var samples = (0..<(w * h * channels)).map { _ in UInt16(rng.next() % UInt64(maxV + 1)) }
            samples[0] = 0
            samples[1] = UInt16(maxV)
            let image = try PNGImage(width: w, height: h, channels: channels, bitDepth: depth, samples: samples)
            let path = dir + "/rt-\(channels)-\(depth).png"
            try image.write(to: path)
            let back = try PNGImage.read(from: path)
            XCTAssertEqual(back, image, "channels \(channels) depth \(depth)")
            // Our files carry no colour-space chunk (gAMA 1.0 would mislead viewers of 16-bit output).
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            for chunk in ["gAMA", "sRGB", "iCCP", "cHRM"] {
                XCTAssertNil(
                    bytes.indices.dropLast(4).first { String(decoding: bytes[$0..<$0 + 4], as: UTF8.self) == chunk },
                    "\(chunk) in written file")
            }
        }
    }

    /// Python (pypng) can read what we write: checked through the fixture direction only, so here we check the
    /// header bytes a foreign reader relies on.
    func testWrittenHeaderMatchesImage() throws {
        let image = try PNGImage(width: 3, height: 2, channels: 3, bitDepth: 16, samples: [UInt16](repeating: 7, count: 18))
        let bytes = try image.encoded()
        let header = try PNGChunks.header(bytes, path: "x")
        XCTAssertEqual(header, PNGHeader(width: 3, height: 2, bitDepth: 16, colorType: 2, interlaced: false))
    }

    func testModelUnitMapping() throws {
        let image = try PNGImage(width: 3, height: 1, channels: 1, bitDepth: 8, samples: [0, 255, 51])
        let t = image.modelUnits()
        XCTAssertEqual(t.shape, [1, 1, 3])
        let expected: [Float] = [-1, 1, 2 * Float(51) / 255 - 1]
        XCTAssertEqual(t.array, expected)
        let rgb = try PNGImage(width: 2, height: 1, channels: 3, bitDepth: 16, samples: [0, 65535, 32768, 1, 2, 3])
        let u = rgb.modelUnits()
        XCTAssertEqual(u.shape, [3, 1, 2])
        // (C,H,W) planes from interleaved pixels
        let mu: (Float) -> Float = { 2 * $0 / 65535 - 1 }
        let planes: [Float] = [0, 1, 65535, 2, 32768, 3].map(mu)
        XCTAssertEqual(u.array, planes)
        // Every 8- and 16-bit value survives value -> model units -> value.
        for depth in [8, 16] {
            let m = Float((1 << depth) - 1)
            for v in 0...((1 << depth) - 1) {
                let x = SampleMapping.modelUnit(UInt16(v), maxValue: m)
                XCTAssertEqual(SampleMapping.sample(x, maxValue: m), UInt16(v))
            }
        }
        // Clipping, rounding, NaN
        XCTAssertEqual(SampleMapping.sample(1.7, maxValue: 255), 255)
        XCTAssertEqual(SampleMapping.sample(-3, maxValue: 255), 0)
        XCTAssertEqual(SampleMapping.sample(.nan, maxValue: 255), 0)
        XCTAssertEqual(SampleMapping.sample(0, maxValue: 255), 128)  // 127.5 rounds away from zero
        let q = try PNGImage(modelUnits: Tensor(shape: [2, 2], values: [-1, 1, 0.5, 2]), bitDepth: 8)
        XCTAssertEqual(q.channels, 1)
        XCTAssertEqual(q.samples, [0, 255, 191, 255])
        XCTAssertThrowsError(try PNGImage(modelUnits: Tensor(shape: [2, 2, 2]), bitDepth: 8))
        XCTAssertThrowsError(try PNGImage(modelUnits: Tensor(shape: [1, 2, 2]), bitDepth: 12))
    }

    /// A 45-byte PNG whose (CRC-valid) IHDR claims 100000x100000 RGBA16 is refused before decoding.
    func testHeaderBombIsRefusedBeforeDecoding() throws {
        let huge = craftedPNG(width: 100_000, height: 100_000, bitDepth: 16, colorType: 6)
        XCTAssertThrowsError(try PNGImage.decode(huge, path: "bomb.png")) { error in
            let e = error as? PNGError
            XCTAssertEqual(e?.kind, .tooLarge)
            XCTAssertEqual(e?.code, "image.too_large")
            XCTAssertTrue(e?.message.contains("bomb.png") ?? false)
            XCTAssertTrue(e?.message.contains("100000x100000") ?? false, "\(error)")
        }
        // Caller limits apply too: 64x64 passes the defaults, not maxPixels 1000.
        let small = craftedPNG(width: 64, height: 64, bitDepth: 8, colorType: 0)
        XCTAssertThrowsError(try PNGImage.decode(small, path: "s.png", limits: PNGLimits(maxPixels: 1000))) {
            XCTAssertEqual(($0 as? PNGError)?.kind, .tooLarge)
        }
        // The same crafted header within limits gets past the size check and fails only in libpng (no image
        // data): proof that the refusal above was the limit, not a malformed header.
        XCTAssertThrowsError(try PNGImage.decode(small, path: "s.png")) { error in
            let e = error as? PNGError
            XCTAssertEqual(e?.kind, .corrupt, "\(error)")
            XCTAssertTrue(e?.message.contains("libpng:") ?? false, "\(error)")
        }
    }

    func testTruncatedAndCorruptFilesAreClearErrors() throws {
        let dir = try scratchDirectory(self)
        let image = try PNGImage(
            width: 40, height: 30, channels: 3, bitDepth: 8,
            samples: (0..<3600).map { UInt16($0 * 7 % 256) })
        let bytes = try image.encoded()
        let truncated = dir + "/truncated.png"
        try Data(bytes.prefix(bytes.count / 2)).write(to: URL(fileURLWithPath: truncated))
        XCTAssertThrowsError(try PNGImage.read(from: truncated)) { error in
            let e = error as? PNGError
            XCTAssertEqual(e?.kind, .corrupt, "\(error)")
            XCTAssertEqual(e?.code, "file.unreadable")
            XCTAssertTrue(e?.message.contains(truncated) ?? false)
            XCTAssertTrue(e?.message.contains("libpng:") ?? false, "\(error)")
        }
        // A flipped byte inside IDAT breaks its CRC.
        var corrupt = bytes
        let idat = try XCTUnwrap(corrupt.indices.first { String(decoding: corrupt[$0..<min($0 + 4, corrupt.count)], as: UTF8.self) == "IDAT" })
        corrupt[idat + 10] ^= 0xFF
        XCTAssertThrowsError(try PNGImage.decode(corrupt, path: "crc.png")) { error in
            XCTAssertEqual((error as? PNGError)?.kind, .corrupt, "\(error)")
        }
        let cut = dir + "/header-only.png"
        try Data(bytes.prefix(20)).write(to: URL(fileURLWithPath: cut))
        XCTAssertThrowsError(try PNGImage.read(from: cut)) { XCTAssertEqual(($0 as? PNGError)?.kind, .corrupt) }
        let text = dir + "/text.png"
        try Data("hello, not a png".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try PNGImage.read(from: text)) { XCTAssertEqual(($0 as? PNGError)?.kind, .notPNG) }
        XCTAssertThrowsError(try PNGHeader.read(from: dir + "/absent.png")) { XCTAssertEqual(($0 as? PNGError)?.kind, .missing) }
        XCTAssertThrowsError(try PNGHeader.read(from: text)) { XCTAssertEqual(($0 as? PNGError)?.kind, .notPNG) }
        XCTAssertThrowsError(try PNGImage.read(from: dir + "/absent.png")) { error in
            XCTAssertEqual((error as? PNGError)?.code, "file.missing")
        }
        XCTAssertThrowsError(try PNGImage.read(from: dir)) { XCTAssertEqual(($0 as? PNGError)?.kind, .unreadable) }
        XCTAssertThrowsError(try PNGImage.read(from: truncated, limits: PNGLimits(maxFileBytes: 10))) {
            XCTAssertEqual(($0 as? PNGError)?.kind, .tooLarge)
        }
    }

    /// Signature + CRC-valid IHDR + IEND, no IDAT.
    private func craftedPNG(width: UInt32, height: UInt32, bitDepth: UInt8, colorType: UInt8) -> [UInt8] {
        PNGChunks.signature
            + pngChunk("IHDR", be32(width) + be32(height) + [bitDepth, colorType, 0, 0, 0])
            + pngChunk("IEND", [])
    }
}

/// Small deterministic generator for test data (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
