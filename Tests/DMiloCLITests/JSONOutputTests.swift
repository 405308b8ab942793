// `--json` on `dmilo inspect`, `dmilo reconstruct` and `dmilo-quantize`, and `dmilo reconstruct`'s refusals
// (measurement shape, strict JSON with line and column) through the built binaries.

import DMiloFormats
import Foundation
import XCTest

final class JSONOutputTests: XCTestCase {
    static let model = BenchMemoryTests.repo.appendingPathComponent("Models/fashion-mnist-32").path

    /// Runs a built executable (beside `dmilo`) and returns its status, stdout and stderr.
    func run(_ args: [String], exe: String = "dmilo") throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try BenchMemoryTests.dmiloBinary()).deletingLastPathComponent().appendingPathComponent(exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func object(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text, file: file, line: line)
    }

    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("json-output-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// NPY v1.0 float32 of `shape`, all `value` (the library's encoder, itself checked against numpy's files).
    static func npy(_ shape: [Int], _ value: Float = 0.1) -> Data {
        Data([Float](repeating: value, count: shape.reduce(1, *)).withUnsafeBufferPointer { NPY.encode(shape: shape, values: $0) })
    }

    func testInspectJSON() throws {
        let r = try run(["inspect", Self.model, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.split(separator: "\n").count, 1, "one JSON line")
        let o = try object(r.stdout)
        XCTAssertEqual(o["image_shape"] as? [Int], [1, 32, 32])
        XCTAssertEqual((o["sha256"] as? String)?.count, 64)
        XCTAssertGreaterThan(o["parameters"] as? Int ?? 0, 100_000)
        XCTAssertEqual((o["schedule"] as? [String: Any])?["train_steps"] as? Int, 1000)
    }

    func testQuantizeJSONSummarisesWhatItWrote() throws {
        let dir = try scratch()
        let out = dir.appendingPathComponent("m.gguf").path
        let r = try run([Self.model, "--type", "q8_0", "--output", out, "--json"], exe: "dmilo-quantize")
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try object(r.stdout)
        XCTAssertEqual(o["output"] as? String, out)
        XCTAssertEqual(o["type"] as? String, "q8_0")
        let size = try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int
        XCTAssertEqual(o["output_bytes"] as? Int, size)
        XCTAssertGreaterThan(o["snr_db"] as? Double ?? 0, 30)
        let tensors = try XCTUnwrap(o["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.count, (o["tensor_types"] as? [String: Int])?.values.reduce(0, +))
        // A failure is JSON too, with exit 1.
        let bad = try run([dir.path, "--type", "q8_0", "--output", dir.appendingPathComponent("x.gguf").path, "--json"], exe: "dmilo-quantize")
        XCTAssertEqual(bad.status, 1)
        XCTAssertNotNil(try object(bad.stdout)["error"] as? String)
    }

    func testReconstructJSONIsMetricsAndRefusalsAreJSON() throws {
        let dir = try scratch()
        try Self.npy([1, 16, 16]).write(to: dir.appendingPathComponent("y.npy"))
        try Data(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "super_resolution", "factor": 2}, "solver": {"method": "baseline"}}"#.utf8)
            .write(to: dir.appendingPathComponent("ok.json"))
        let r = try run([
            "reconstruct", dir.appendingPathComponent("ok.json").path, "--model", Self.model, "--compute", "f32",
            "--out", dir.appendingPathComponent("ok").path, "--json",
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        let metrics = try object(r.stdout)
        XCTAssertEqual(metrics["job"] as? String, "ok")
        XCTAssertEqual(metrics["measurement_shape"] as? [Int], [1, 16, 16])
        XCTAssertEqual(Data(r.stdout.utf8), try Data(contentsOf: dir.appendingPathComponent("ok/metrics.json")))

        // 64×64 for SR×2 on the 32×32 model: the message names the model's image, the expected and the given shape.
        try Self.npy([1, 64, 64]).write(to: dir.appendingPathComponent("big.npy"))
        try Data(#"{"version": 1, "measurement": "big.npy", "operator": {"type": "super_resolution", "factor": 2}}"#.utf8)
            .write(to: dir.appendingPathComponent("big.json"))
        let big = try run([
            "reconstruct", dir.appendingPathComponent("big.json").path, "--model", Self.model, "--compute", "f32",
            "--out", dir.appendingPathComponent("big").path, "--json",
        ])
        XCTAssertNotEqual(big.status, 0)
        let e = try object(big.stdout)
        XCTAssertEqual(e["error"] as? String, "measurement.shape")
        XCTAssertEqual(
            e["message"] as? String,
            "big.npy: shape [1,64,64] does not fit super_resolution (factor 2) on this "
                + "model: the model makes [1,32,32] images, so the operator expects a [1,16,16] measurement")
        XCTAssertEqual(
            try object(String(decoding: Data(contentsOf: dir.appendingPathComponent("big/error.json")), as: UTF8.self))["error"] as? String,
            "measurement.shape")

        // Strict JSON: a duplicate key is refused with its line and column, before the model matters.
        try Data("{\"version\": 1, \"measurement\": \"y.npy\",\n \"operator\": {\"type\": \"denoise\"},\n \"seed\": 1, \"seed\": 2}".utf8)
            .write(to: dir.appendingPathComponent("dup.json"))
        let dup = try run([
            "reconstruct", dir.appendingPathComponent("dup.json").path, "--model", Self.model, "--compute", "f32",
            "--out", dir.appendingPathComponent("dup").path, "--json",
        ])
        XCTAssertNotEqual(dup.status, 0)
        let d = try object(dup.stdout)
        XCTAssertEqual(d["error"] as? String, "manifest.invalid")
        XCTAssertTrue((d["message"] as? String ?? "").contains("line 3, column 13: duplicate key \"seed\""), "\(d)")
        XCTAssertTrue(dup.stderr.contains("line 3, column 13"), dup.stderr)
    }

    /// `dmilo simulate --operator` reads JSON as strictly as the daemon reads manifests.
    func testSimulateOperatorIsStrictJSON() throws {
        let dir = try scratch()
        let image = BenchMemoryTests.repo.appendingPathComponent("Tests/Data/fashion-mnist-test/test-00101.png").path
        let r = try run([
            "simulate", "--image", image, "--operator", #"{"type": "super_resolution", "factor": 2,}"#,
            "--out", dir.appendingPathComponent("j.json").path,
        ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("line 1, column 42: trailing comma"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("j.json").path))
    }
}
