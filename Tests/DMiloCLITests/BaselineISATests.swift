// The product runs on any x86-64 CPU: `dmilo --help` and `dmilo eval` under `qemu-x86_64 -cpu Nehalem` (SSE4.2, no
// AVX) — the f32 output and input gradient match the native run within 1e-4 relative. Skips with a message when
// qemu-user is not installed (`make deps` installs it) or the host is not x86-64.

import Foundation
import XCTest

final class BaselineISATests: XCTestCase {
    static func qemu() throws -> String {
        #if !arch(x86_64)
        throw XCTSkip("not an x86-64 host")
        #else
        for p in ["/usr/bin/qemu-x86_64", "/usr/bin/qemu-x86_64-static"] where FileManager.default.isExecutableFile(atPath: p) {
            return p
        }
        throw XCTSkip("qemu-x86_64 not installed (Debian package qemu-user): baseline-CPU run skipped")
        #endif
    }

    func run(_ exe: String, _ args: [String], env: [String: String] = [:]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// NPY v1.0 float32 (B, C, H, W).
    func writeNPY(_ url: URL, shape: [Int], seed: UInt64) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", "))), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        var data = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0, UInt8(header.count + 1), 0]) + Data((header + "\n").utf8)
        var s = seed
        for _ in 0..<shape.reduce(1, *) {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            var v = Float(Int64(bitPattern: s >> 11) % 2001 - 1000) / 500
            data.append(Data(bytes: &v, count: 4))
        }
        try data.write(to: url)
    }

    func readNPY(_ url: URL) throws -> [Float] {
        let d = try Data(contentsOf: url)
        let headerLen = Int(d[8]) | Int(d[9]) << 8
        return d.subdata(in: (10 + headerLen)..<d.count).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func relMax(_ a: [Float], _ b: [Float]) -> Float {
        var num: Float = 0, den: Float = 0
        for i in 0..<b.count { num = max(num, abs(a[i] - b[i])); den = max(den, abs(b[i])) }
        return num / max(den, 1e-30)
    }

    func testEvalUnderNehalemMatchesNative() throws {
        let qemu = try Self.qemu()
        let dmilo = try BenchMemoryTests.dmiloBinary()
        let (helpStatus, helpErr) = try run(qemu, ["-cpu", "Nehalem", dmilo, "--help"])
        XCTAssertEqual(helpStatus, 0, "dmilo --help under qemu -cpu Nehalem: \(helpErr)")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("baseline-isa-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = BenchMemoryTests.repo.appendingPathComponent("Models/fashion-mnist-32").path
        let x = dir.appendingPathComponent("x.npy"), c = dir.appendingPathComponent("c.npy")
        try writeNPY(x, shape: [1, 1, 32, 32], seed: 1)
        try writeNPY(c, shape: [1, 1, 32, 32], seed: 2)
        func eval(_ tag: String, emulated: Bool) throws -> ([Float], [Float]) {
            let out = dir.appendingPathComponent("\(tag)-y.npy"), g = dir.appendingPathComponent("\(tag)-g.npy")
            let args = [
                "eval", "--model", model, "--input", x.path, "--timestep", "400", "--out", out.path,
                "--cotangent", c.path, "--input-grad", g.path, "--compute", "f32", "--threads", "1",
            ]
            let (status, err) = emulated ? try run(qemu, ["-cpu", "Nehalem", dmilo] + args) : try run(dmilo, args)
            XCTAssertEqual(status, 0, "\(tag): \(err)")
            return (try readNPY(out), try readNPY(g))
        }
        let (y0, g0) = try eval("native", emulated: false)
        let (y1, g1) = try eval("nehalem", emulated: true)
        XCTAssertEqual(y1.count, y0.count)
        XCTAssertLessThan(relMax(y1, y0), 1e-4, "output under Nehalem vs native")
        XCTAssertLessThan(relMax(g1, g0), 1e-4, "input gradient under Nehalem vs native")
        print("Nehalem vs native: output \(relMax(y1, y0)), gradient \(relMax(g1, g0))")
    }
}
