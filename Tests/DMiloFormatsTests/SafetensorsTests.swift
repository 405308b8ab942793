import Foundation
import XCTest

@testable import DMiloFormats

final class SafetensorsTests: XCTestCase {
    func tmp(_ name: String) -> String {
        let d = NSTemporaryDirectory() + "dmilo-st-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d + "/" + name
    }

    /// Writes a raw file: u64 header length + header text + payload bytes.
    func raw(_ header: String, payload: [UInt8], declaredLength: UInt64? = nil) -> String {
        let p = tmp("x.safetensors")
        var bytes: [UInt8] = []
        withUnsafeBytes(of: (declaredLength ?? UInt64(header.utf8.count)).littleEndian) { bytes += $0 }
        bytes += Array(header.utf8) + payload
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    func assertError(_ path: String, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains(path), "error does not name the file: \(s)", file: file, line: line)
            for p in parts { XCTAssertTrue(s.contains(p), "error lacks \(p): \(s)", file: file, line: line) }
        }
    }

    func testRoundTripAllFloatTypes() throws {
        let p = tmp("w.safetensors")
        let a: [Float] = [1, -2.5, 0.333333, 65504, 1e-6, -0.0]
        try SafetensorsWriter.write(
            [
                .init(name: "a.f32", shape: [2, 3], values: a),
                .init(name: "b.f16", shape: [6], values: a, dtype: .F16),
                .init(name: "c.bf16", shape: [3, 2], values: a, dtype: .BF16),
                .init(name: "scalar", shape: [], values: [7]),
            ], to: p, metadata: ["format": "pt"])
        let f = try SafetensorsFile(path: p)
        XCTAssertEqual(f.names, ["a.f32", "b.f16", "c.bf16", "scalar"])
        XCTAssertEqual(f.metadata, ["format": "pt"])
        XCTAssertEqual(f.tensors["a.f32"]?.shape, [2, 3])
        XCTAssertEqual(f.tensors["b.f16"]?.dtype, .F16)
        var out = [Float](repeating: 0, count: 6)
        try out.withUnsafeMutableBufferPointer { try f.loadF32("a.f32", into: $0) }
        XCTAssertEqual(out, a)
        try out.withUnsafeMutableBufferPointer { try f.loadF32("b.f16", into: $0) }
        for (x, y) in zip(out, a) { XCTAssertEqual(x, y, accuracy: abs(y) * 1e-3 + 1e-7) }
        try out.withUnsafeMutableBufferPointer { try f.loadF32("c.bf16", into: $0) }
        for (x, y) in zip(out, a) { XCTAssertEqual(x, y, accuracy: abs(y) * 8e-3 + 1e-8) }
        var one: [Float] = [0]
        try one.withUnsafeMutableBufferPointer { try f.loadF32("scalar", into: $0) }
        XCTAssertEqual(one, [7])
        XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer { try f.loadF32("nope", into: $0) })
        var wrong = [Float](repeating: 0, count: 5)
        XCTAssertThrowsError(try wrong.withUnsafeMutableBufferPointer { try f.loadF32("a.f32", into: $0) })
    }

    /// The file written by the Python `safetensors` package for a diffusers model parses with the right layout.
    func testReadsPythonWrittenFile() throws {
        // 1 tensor F32 [2]: header as safetensors 0.8 writes it (padded with spaces to 8-byte alignment).
        var header = #"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        while (8 + header.utf8.count) % 8 != 0 { header += " " }
        var payload: [UInt8] = []
        for v: Float in [1.5, -3] { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload += $0 } }
        let f = try SafetensorsFile(path: raw(header, payload: payload))
        var out: [Float] = [0, 0]
        try out.withUnsafeMutableBufferPointer { try f.loadF32("w", into: $0) }
        XCTAssertEqual(out, [1.5, -3])
    }

    func testTruncatedData() {
        let h = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        assertError(raw(h, payload: [UInt8](repeating: 0, count: 12)), contains: ["w", "truncated"])
    }

    func testTruncatedHeader() {
        assertError(raw(#"{"w":{"#, payload: [], declaredLength: 200), contains: ["JSON header"])
    }

    func testShortFile() {
        let p = tmp("short.safetensors")
        FileManager.default.createFile(atPath: p, contents: Data([1, 2, 3]))
        assertError(p, contains: ["8-byte"])
    }

    func testHeaderTooLarge() {
        assertError(raw("{}", payload: [], declaredLength: 200_000_000), contains: ["100 MB"])
    }

    func testBadJSON() {
        assertError(raw("{not json}", payload: []), contains: ["JSON"])
    }

    func testOverlappingOffsets() {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertError(raw(h, payload: [UInt8](repeating: 0, count: 12)), contains: ["overlaps"])
    }

    func testLengthShapeMismatch() {
        let h = #"{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}"#
        assertError(raw(h, payload: [UInt8](repeating: 0, count: 8)), contains: ["a", "needs 6"])
    }

    func testUnknownDType() {
        let h = #"{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#
        assertError(raw(h, payload: [UInt8](repeating: 0, count: 16)), contains: ["a", "F128"])
    }

    func testNonFloatLoadRefused() throws {
        let h = #"{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#
        let f = try SafetensorsFile(path: raw(h, payload: [UInt8](repeating: 0, count: 8)))
        var out: [Float] = [0]
        XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer { try f.loadF32("i", into: $0) }) { e in
            XCTAssertTrue("\(e)".contains("I64"))
        }
    }

    func testMissingFile() {
        XCTAssertThrowsError(try SafetensorsFile(path: "/nonexistent/dir/w.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/dir/w.safetensors"))
        }
    }
}

final class HalfPrecisionTests: XCTestCase {
    /// Every binary16 bit pattern survives f16 -> f32 -> f16 (NaNs stay NaN) and matches Swift's Float16 where present.
    func testF16AllPatternsRoundTrip() {
        for bits in 0...0xffff {
            let h = UInt16(bits)
            let f = HalfPrecision.f16ToF32(h)
            if f.isNaN { XCTAssertTrue(HalfPrecision.f16ToF32(HalfPrecision.f32ToF16(f)).isNaN); continue }
            XCTAssertEqual(HalfPrecision.f32ToF16(f), h, "pattern \(bits)")
            #if arch(x86_64) || arch(arm64)
            XCTAssertEqual(f, Float(Float16(bitPattern: h)), "pattern \(bits)")
            #endif
        }
    }

    /// Rounding to f16 is round-to-nearest-even, checked against Swift's Float16 conversion on many floats.
    func testF32ToF16MatchesFloat16() {
        var s: UInt32 = 12345
        for _ in 0..<200_000 {
            s = s &* 1664525 &+ 1013904223
            let f = Float(bitPattern: (s & 0x8fff_ffff) | 0x3000_0000 & s)  // broad exponent range
            if f.isNaN { continue }
            XCTAssertEqual(HalfPrecision.f32ToF16(f), Float16(f).bitPattern, "\(f)")
        }
        XCTAssertEqual(HalfPrecision.f32ToF16(65520), 0x7c00)  // rounds up to inf
        XCTAssertEqual(HalfPrecision.f32ToF16(1e-8), 0)
    }

    func testBF16() {
        XCTAssertEqual(HalfPrecision.bf16ToF32(0x3f80), 1)
        XCTAssertEqual(HalfPrecision.f32ToBF16(1), 0x3f80)
        // ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> 1
        XCTAssertEqual(HalfPrecision.f32ToBF16(1 + 1.0 / 256), 0x3f80)
        XCTAssertEqual(HalfPrecision.f32ToBF16(1 + 3.0 / 256), 0x3f82)
        for bits in stride(from: 0, to: 0xffff, by: 7) where !HalfPrecision.bf16ToF32(UInt16(bits)).isNaN {
            XCTAssertEqual(HalfPrecision.f32ToBF16(HalfPrecision.bf16ToF32(UInt16(bits))), UInt16(bits))
        }
    }
}
