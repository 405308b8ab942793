// `dmilo reconstruct` with a posterior sampler: the posterior mean, uncertainty.npy/.png and samples.npy with the
// documented shapes, and the new metrics.json fields.

import Foundation
import XCTest

final class UncertaintyOutputTests: XCTestCase {
    /// The shape tuple of an NPY v1 header ("(3, 1, 32, 32)" → [3, 1, 32, 32]).
    func npyShape(_ url: URL) throws -> [Int] {
        let data = try Data(contentsOf: url)
        XCTAssertEqual(Array(data.prefix(6)), [0x93] + Array("NUMPY".utf8))
        let length = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + length)], as: UTF8.self)
        XCTAssertTrue(header.contains("'descr': '<f4'"), header)
        let inside = try XCTUnwrap(header.range(of: "'shape': (").map { header[$0.upperBound...] }?.split(separator: ")").first)
        return inside.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    func testDAPSWritesMeanUncertaintyAndSamples() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("uncertainty-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let repo = BenchMemoryTests.repo
        let model = repo.appendingPathComponent("Models/fashion-mnist-32").path
        let image = repo.appendingPathComponent("Tests/Data/fashion-mnist-test/test-00102.png").path
        let job = dir.appendingPathComponent("job.json")
        // 3 chains × 2 annealing levels × 5 ODE steps = the budget of 30 forwards
        var (status, text) = try BenchMemoryTests.runDmilo(
            [
                "simulate", "--image", image, "--operator", #"{"type":"inpainting","missing_fraction":0.5,"mask_seed":1}"#,
                "--noise-sigma", "0.01", "--seed", "1", "--out", job.path,
                "--solver", #"{"method":"daps","samples":3,"keep_samples":true,"budget":30}"#,
            ])
        XCTAssertEqual(status, 0, text)
        let out = dir.appendingPathComponent("out")
        (status, text) = try BenchMemoryTests.runDmilo(["reconstruct", job.path, "--model", model, "--out", out.path, "--threads", "1"])
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(try npyShape(out.appendingPathComponent("reconstruction.npy")), [1, 32, 32])
        XCTAssertEqual(try npyShape(out.appendingPathComponent("uncertainty.npy")), [1, 32, 32])
        XCTAssertEqual(try npyShape(out.appendingPathComponent("samples.npy")), [3, 1, 32, 32])
        let png = try Data(contentsOf: out.appendingPathComponent("uncertainty.png"))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        let metrics = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as? [String: Any])
        XCTAssertEqual(metrics["method"] as? String, "daps")
        XCTAssertEqual(metrics["posterior_samples"] as? Int, 3)
        XCTAssertEqual(metrics["unet_evaluations"] as? Int, 30)
        XCTAssertEqual(metrics["unet_vjp_evaluations"] as? Int, 0)
        let meanSigma = try XCTUnwrap(metrics["mean_sigma"] as? Double)
        XCTAssertTrue(meanSigma > 0 && meanSigma < 1, "\(meanSigma)")
        let coverage = try XCTUnwrap(metrics["coverage_2sigma"] as? Double)
        XCTAssertTrue((0...1).contains(coverage))

        // samples > 1 for an optimiser: refused, naming the field
        var doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: job)) as? [String: Any])
        doc["solver"] = ["method": "dmilo", "samples": 2]
        let bad = dir.appendingPathComponent("bad.json")
        try JSONSerialization.data(withJSONObject: doc).write(to: bad)
        (status, text) = try BenchMemoryTests.runDmilo(["reconstruct", bad.path, "--model", model, "--out", dir.appendingPathComponent("bad").path])
        XCTAssertNotEqual(status, 0)
        let error = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("bad/error.json"))) as? [String: Any])
        XCTAssertEqual(error["error"] as? String, "manifest.invalid")
        XCTAssertEqual(error["field"] as? String, "solver.samples")
    }
}
