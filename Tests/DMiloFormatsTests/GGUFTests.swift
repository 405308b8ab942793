import Foundation
import XCTest

@testable import DMiloFormats

final class GGUFTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func tempFile(_ bytes: [UInt8]) throws -> String {
        let p = NSTemporaryDirectory() + "gguf-test-\(UUID().uuidString).gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: p) }
        return p
    }

    /// A file written by PyPI gguf's GGUFWriter reads back with the same metadata and dequantised values.
    func testReadsFileWrittenByReferenceWriter() throws {
        let f = try GGUFFile(path: Self.fixtures.appendingPathComponent("reference.gguf").path)
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("reference-gguf.json"))) as! [String: Any]
        XCTAssertEqual(f.metadata["general.architecture"]?.stringValue, "dmilo.test")
        XCTAssertEqual(f.metadata["test.u32"], .uint32(123456))
        XCTAssertEqual(f.metadata["test.i32"], .int32(-42))
        XCTAssertEqual(f.metadata["test.f32"], .float32(0.625))
        XCTAssertEqual(f.metadata["test.bool"], .bool(true))
        XCTAssertEqual(f.metadata["test.string"]?.stringValue, "héllo gguf")
        XCTAssertEqual(f.metadata["test.strings"], .array([.string("a"), .string("bc")]))
        XCTAssertEqual(f.metadata["test.u64"], .uint64(1 << 40))
        XCTAssertEqual(f.metadata["test.f64"], .float64(-1.5))
        XCTAssertEqual(f.metadata["general.quantization_version"]?.intValue, 2)
        for name in ["weight.q8", "weight.f16", "weight.f32"] {
            let e = expected[name] as! [String: Any]
            let info = try XCTUnwrap(f.tensors[name])
            XCTAssertEqual(info.shape, e["shape"] as! [Int], name)
            XCTAssertEqual(info.type.name, e["type"] as! String, name)
            let want = e["values"] as! [Double]
            var got = [Float](repeating: 0, count: info.count)
            try got.withUnsafeMutableBufferPointer { try f.loadF32(name, into: $0) }
            for i in want.indices { XCTAssertEqual(Double(got[i]), want[i], accuracy: 1e-6, "\(name)[\(i)]") }
        }
    }

    /// Our Q8_0 quantiser is byte-identical to gguf's reference quantiser on the same input.
    func testQ8_0BytesMatchReferenceQuantiser() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("reference-gguf.json"))) as! [String: Any]
        let input = (expected["q8_input"] as! [Double]).map(Float.init)
        let hex = expected["q8_bytes_hex"] as! String
        var out = [UInt8](repeating: 0, count: GGMLType.q8_0.byteCount(elements: input.count))
        input.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { Q8_0.quantize(src, into: $0) } }
        XCTAssertEqual(out.map { String(format: "%02x", $0) }.joined(), hex)
    }

    func testRoundTripOfAllValueAndTensorTypes() throws {
        var w = GGUFWriter()
        let values: [(String, GGUFValue)] = [
            ("a.u8", .uint8(7)), ("a.i8", .int8(-7)), ("a.u16", .uint16(65000)), ("a.i16", .int16(-3000)),
            ("a.u32", .uint32(4_000_000_000)), ("a.i32", .int32(-5)), ("a.f32", .float32(1.25)), ("a.bool", .bool(false)),
            ("a.str", .string("x y z")), ("a.u64", .uint64(.max)), ("a.i64", .int64(.min)), ("a.f64", .float64(.pi)),
            ("a.arr", .array([.float32(1), .float32(2)])), ("a.nested", .array([.array([.int32(1)]), .array([.int32(2), .int32(3)])])),
        ]
        for (k, v) in values { w.add(k, v) }
        var r = SeededRandomish(seed: 3)
        let t32 = (0..<60).map { _ in r.next() }, t16 = (0..<10).map { _ in r.next() }, tq = (0..<96).map { _ in r.next() }
        w.addTensor("t.f32", shape: [3, 4, 5], values: t32, type: .f32)
        w.addTensor("t.f16", shape: [10], values: t16, type: .f16)
        w.addTensor("t.q8", shape: [3, 32], values: tq, type: .q8_0)
        let f = try GGUFFile(path: try tempFile(w.encoded()))
        for (k, v) in values { XCTAssertEqual(f.metadata[k], v, k) }
        XCTAssertEqual(f.metadataKeys, values.map(\.0))
        XCTAssertEqual(f.tensorNames, ["t.f32", "t.f16", "t.q8"])
        XCTAssertEqual(f.tensors["t.f32"]?.shape, [3, 4, 5])
        for t in f.tensors.values { XCTAssertEqual(t.fileOffset % 32, 0) }
        var g = [Float](repeating: 0, count: 60)
        try g.withUnsafeMutableBufferPointer { try f.loadF32("t.f32", into: $0) }
        XCTAssertEqual(g, t32)
        var h = [Float](repeating: 0, count: 10)
        try h.withUnsafeMutableBufferPointer { try f.loadF32("t.f16", into: $0) }
        for i in 0..<10 { XCTAssertEqual(h[i], t16[i], accuracy: 1e-3 * max(1, abs(t16[i]))) }
        var q = [Float](repeating: 0, count: 96)
        try q.withUnsafeMutableBufferPointer { try f.loadF32("t.q8", into: $0) }
        var num: Float = 0, den: Float = 0
        for i in 0..<96 { num += (q[i] - tq[i]) * (q[i] - tq[i]); den += tq[i] * tq[i] }
        XCTAssertLessThan((num / den).squareRoot(), 0.01, "Q8_0 relative RMS error")
    }

    func testCorruptAndTruncatedFilesAreClearErrors() throws {
        var w = GGUFWriter()
        w.add("k", .string("v"))
        w.addTensor("t", shape: [2, 32], values: [Float](repeating: 0.5, count: 64), type: .q8_0)
        let good = w.encoded()
        func expectError(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let p = try tempFile(bytes)
            XCTAssertThrowsError(try GGUFFile(path: p), file: file, line: line) { e in
                XCTAssertTrue("\(e)".contains(fragment), "\(e)", file: file, line: line)
                XCTAssertTrue("\(e)".contains(p), "error names the file: \(e)", file: file, line: line)
            }
        }
        try expectError(Array(good.prefix(good.count - 40)), "outside the file")  // data truncated (past the padding)
        try expectError(Array(good.prefix(30)), "truncated")  // header truncated
        var bad = good; bad[0] = 0x58
        try expectError(bad, "magic")
        bad = good; bad[4] = 2
        try expectError(bad, "version")
        bad = good; bad[8] = 0xFF; bad[15] = 0x7F  // absurd tensor count
        try expectError(bad, "implausibly large")
        XCTAssertNoThrow(try GGUFFile(path: try tempFile(good)))
    }
}

/// Tiny deterministic generator for test values (keeps this test independent of DMiloKernels).
struct SeededRandomish {
    var s: UInt64
    init(seed: UInt64) { s = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return Float(Int64(bitPattern: s) % 2001) / 1000
    }
}
