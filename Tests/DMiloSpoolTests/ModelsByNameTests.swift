import Foundation
import XCTest

/// Config `models` + manifest `model` through the product `dmilod` and the bundled model: the float folder as
/// `default` and its Q8_0 GGUF as `q8`. Each job runs on the model it names (metrics.json `model.name`, `path`,
/// `weights` say which), in worker processes (each loads only its job's model) and inside the daemon; an unknown name
/// fails with `model.unknown`.
final class ModelsByNameTests: XCTestCase {
    func testJobsRunOnTheModelTheyName() throws {
        let product = try XCTUnwrap(DaemonBinary.product)
        let folder = DaemonBinary.repo.appendingPathComponent("Models/fashion-mnist-32").path
        let gguf = folder + "/model-q8_0.gguf"
        guard FileManager.default.fileExists(atPath: gguf) else { throw XCTSkip("no bundled model") }
        // A (1, 32, 32) float32 measurement of 0.1s.
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 32, 32), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        var npy = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count + 1), 0]) + Data((header + "\n").utf8)
        for _ in 0..<1024 { var v: Float = 0.1; npy.append(Data(bytes: &v, count: 4)) }
        for isolate in [true, false] {
            let s = try TempSpool()
            for (name, model) in [("plain", ""), ("quant", #", "model": "q8""#), ("other", #", "model": "nope""#)] {
                try s.drop("\(name).npy", npy)
                try s.drop(
                    "\(name).json",
                    Data(#"{"version": 1, "measurement": "\#(name).npy", "operator": {"type": "denoise"}, "solver": {"method": "dmilo", "steps": 2, "outer": 1, "inner": 1}\#(model)}"#.utf8))
            }
            let cfg = s.url("dmilod.json")
            try Data(#"{"spool": "\#(s.path)", "models": {"default": "\#(folder)", "q8": "\#(gguf)"}, "threads": 1, "memory_budget_mb": 512, "isolate_jobs": \#(isolate)}"#.utf8).write(to: cfg)
            let r = try DaemonProcess.run(["--config", cfg.path, "--once"], timeout: 300, executable: product)
            XCTAssertEqual(r.status, 1, "one job failed (model.unknown)\n\(r.stderr)")
            XCTAssertEqual(s.visible("done"), ["plain", "quant"], r.stderr)
            func model(_ job: String) throws -> [String: Any] {
                let m = try JSONSerialization.jsonObject(with: Data(contentsOf: s.url("done/\(job)/metrics.json"))) as? [String: Any]
                return try XCTUnwrap(m?["model"] as? [String: Any], "\(String(describing: m))")
            }
            let plain = try model("plain"), quant = try model("quant")
            XCTAssertEqual(plain["name"] as? String, "default")
            XCTAssertEqual(plain["path"] as? String, folder)
            XCTAssertEqual(plain["weights"] as? String, "f32")
            XCTAssertEqual(quant["name"] as? String, "q8")
            XCTAssertEqual(quant["path"] as? String, gguf)
            XCTAssertEqual(quant["weights"] as? String, "q8_0")
            XCTAssertNotEqual(plain["sha256"] as? String, quant["sha256"] as? String)
            let e = try XCTUnwrap(s.errorJSON("other"))
            XCTAssertEqual(e["error"] as? String, "model.unknown")
            XCTAssertEqual(e["field"] as? String, "model")
            XCTAssertTrue(r.stderr.contains("MODEL=q8"), r.stderr)
        }
    }
}
