import DMiloKernels
import Foundation
import XCTest

@testable import DMiloFormats

final class NPYTests: XCTestCase {
    func tmp(_ name: String) -> String {
        let d = NSTemporaryDirectory() + "dmilo-npy-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d + "/" + name
    }

    func file(_ header: String, data: [UInt8], major: UInt8 = 1) -> String {
        var h = header
        let prefix = major == 1 ? 10 : 12
        while (prefix + h.utf8.count + 1) % 64 != 0 { h += " " }
        h += "\n"
        var b: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        let n = h.utf8.count
        b += [UInt8(n & 0xff), UInt8(n >> 8)]
        if major != 1 { b += [0, 0] }
        b += Array(h.utf8) + data
        let p = tmp("a.npy")
        FileManager.default.createFile(atPath: p, contents: Data(b))
        return p
    }

    func f32(_ v: [Float]) -> [UInt8] { v.flatMap { x in withUnsafeBytes(of: x.bitPattern.littleEndian) { Array($0) } } }

    func testRoundTrip() throws {
        for shape in [[2, 3, 4], [5], [], [1, 1, 2, 2]] {
            let n = shape.reduce(1, *)
            let vals = (0..<n).map { Float($0) * 0.25 - 1 }
            let p = tmp("r.npy")
            try vals.withUnsafeBufferPointer { try NPY.write(path: p, shape: shape, values: $0) }
            let a = try NPY.read(path: p)
            XCTAssertEqual(a.shape, shape)
            XCTAssertEqual(a.values, vals)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: p))
            XCTAssertEqual((bytes.count - n * 4) % 64, 0, "data must start 64-byte aligned")
        }
    }

    func testTensorRoundTrip() throws {
        let t = Tensor(shape: [2, 1, 2, 2], values: [1, 2, 3, 4, 5, 6, 7, 8])
        let p = tmp("t.npy")
        try NPY.write(path: p, tensor: t)
        let r = try NPY.readTensor(path: p)
        XCTAssertEqual(r.shape, t.shape)
        XCTAssertEqual(r.array, t.array)
    }

    func testFloat64AndV2() throws {
        let d: [Double] = [1.5, -2, 1e-3]
        let bytes = d.flatMap { x in withUnsafeBytes(of: x.bitPattern.littleEndian) { Array($0) } }
        let a = try NPY.read(path: file("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", data: bytes, major: 2))
        XCTAssertEqual(a.shape, [3])
        XCTAssertEqual(a.values, [1.5, -2, 1e-3])
    }

    func assertError(_ path: String, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try NPY.read(path: path), file: file, line: line) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains(path), s, file: file, line: line)
            for p in parts { XCTAssertTrue(s.contains(p), "missing \(p): \(s)", file: file, line: line) }
        }
    }

    func testFortranOrderRefused() {
        assertError(file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", data: f32([1, 2, 3, 4])), ["fortran_order"])
    }

    func testBigEndianRefused() {
        assertError(file("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0]), ["descr", "big-endian"])
    }

    func testOtherDTypeRefused() {
        assertError(file("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", data: [UInt8](repeating: 0, count: 8)), ["descr", "<i8"])
    }

    func testTruncatedData() {
        assertError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data: f32([1, 2])), ["truncated"])
    }

    func testTruncatedHeaderAndBadMagic() {
        let p = tmp("bad.npy")
        FileManager.default.createFile(atPath: p, contents: Data([0x93] + Array("NUMPY".utf8) + [1, 0, 200, 0] + Array("{'descr'".utf8)))
        assertError(p, ["truncated"])
        let q = tmp("notnpy.npy")
        FileManager.default.createFile(atPath: q, contents: Data(Array("hello world, not numpy".utf8)))
        assertError(q, ["magic"])
    }

    /// A file written by numpy itself (np.save of float32 (2,3)), bytes inlined.
    func testNumpyWrittenHeader() throws {
        let a = try NPY.read(path: file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: f32([0, 1, 2, 3, 4, 5])))
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.values, [0, 1, 2, 3, 4, 5])
    }
}
