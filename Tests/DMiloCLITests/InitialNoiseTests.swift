// `dmilo reconstruct --initial-noise`: the injected latent replaces the seeded draw (what lets
// Tools/compare_reference.py feed our solver and the PyTorch reference the same noise).

import Foundation
import XCTest

final class InitialNoiseTests: XCTestCase {
    func run(_ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try BenchMemoryTests.dmiloBinary())
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// NPY v1.0 of float32 zeros-and-ones, shape (1, 32, 32), written by hand so the test needs no other module.
    func writeNoise(_ url: URL) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 32, 32), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        var data = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0, UInt8(header.count + 1), 0]) + Data((header + "\n").utf8)
        for i in 0..<1024 { var v: Float = i % 3 == 0 ? 1 : -0.5; data.append(Data(bytes: &v, count: 4)) }
        try data.write(to: url)
    }

    func testSameNoiseFileGivesTheSameReconstructionWhateverTheSeed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("initial-noise-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let repo = BenchMemoryTests.repo
        let model = repo.appendingPathComponent("Models/fashion-mnist-32").path
        let image = repo.appendingPathComponent("Tests/Data/fashion-mnist-test/test-00101.png").path
        let noise = dir.appendingPathComponent("noise.npy")
        try writeNoise(noise)
        let job = dir.appendingPathComponent("job.json")
        XCTAssertEqual(
            try run([
                "simulate", "--image", image, "--operator", #"{"type":"super_resolution","factor":2}"#,
                "--noise-sigma", "0.01", "--seed", "1", "--out", job.path,
                "--solver", #"{"method":"dmilo","steps":2,"outer":1,"inner":2}"#,
            ]), 0)
        // The same job (same measurement) with another solver seed.
        var doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: job)) as? [String: Any])
        doc["seed"] = 2
        let reseeded = dir.appendingPathComponent("reseeded.json")
        try JSONSerialization.data(withJSONObject: doc).write(to: reseeded)

        func reconstruct(_ manifest: URL, _ name: String, noise extra: [String]) throws -> Data {
            let out = dir.appendingPathComponent(name)
            XCTAssertEqual(try run(["reconstruct", manifest.path, "--model", model, "--out", out.path, "--threads", "1"] + extra), 0)
            return try Data(contentsOf: out.appendingPathComponent("reconstruction.npy"))
        }
        let injected = try reconstruct(job, "a", noise: ["--initial-noise", noise.path])
        XCTAssertEqual(try reconstruct(reseeded, "b", noise: ["--initial-noise", noise.path]), injected)
        XCTAssertNotEqual(try reconstruct(job, "c", noise: []), injected)  // the seeded draw is another latent

        let bad = dir.appendingPathComponent("bad.npy")
        try Data("not an npy".utf8).write(to: bad)
        XCTAssertNotEqual(
            try run([
                "reconstruct", job.path, "--model", model, "--out", dir.appendingPathComponent("d").path,
                "--initial-noise", bad.path,
            ]), 0)
    }
}
