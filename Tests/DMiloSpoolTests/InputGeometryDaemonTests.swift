import DMiloFormats
import DMiloImage
import DMiloSpool
import Foundation
import XCTest

/// Issue 15 items 5–7 through the product `dmilod` with the bundled 32×32 gray model: measurements that do not fit
/// are refused naming the model's image, the operator's expectation and what was given; `color` converts or is
/// refused; strict JSON errors carry line and column; montages have a header and hatch unobserved pixels.
final class InputGeometryDaemonTests: XCTestCase {
    static func npy(_ shape: [Int], _ value: Float = 0.1) -> Data {
        Data([Float](repeating: value, count: shape.reduce(1, *)).withUnsafeBufferPointer { NPY.encode(shape: shape, values: $0) })
    }

    static func png(width: Int, height: Int, channels: Int) throws -> Data {
        let samples = (0..<(width * height * channels)).map { UInt16(($0 * 37) % 256) }
        return Data(try PNGImage(width: width, height: height, channels: channels, bitDepth: 8, samples: samples).encoded())
    }

    func testShapesColorStrictJSONAndMontageThroughTheDaemon() throws {
        let product = try XCTUnwrap(DaemonBinary.product)
        let model = DaemonBinary.repo.appendingPathComponent("Models/fashion-mnist-32").path
        guard FileManager.default.fileExists(atPath: model) else { throw XCTSkip("no bundled model") }
        let s = try TempSpool()
        func job(_ name: String, _ measurement: String, _ data: Data, _ rest: String) throws {
            try s.drop(measurement, data)
            try s.drop("\(name).json", Data(#"{"version": 1, "measurement": "\#(measurement)", \#(rest)}"#.utf8))
        }
        let baseline = #""solver": {"method": "baseline"}"#
        try job("sr-64", "sr-64.npy", Self.npy([1, 64, 64]), #""operator": {"type": "super_resolution", "factor": 2}"#)
        try job("denoise-28", "denoise-28.npy", Self.npy([28, 28]), #""operator": {"type": "denoise"}"#)
        try job("png-64", "png-64.png", try Self.png(width: 64, height: 64, channels: 1), #""operator": {"type": "denoise"}"#)
        try job("png-28", "png-28.png", try Self.png(width: 28, height: 28, channels: 1), #""operator": {"type": "denoise"}"#)
        try job("png-rgb", "png-rgb.png", try Self.png(width: 32, height: 32, channels: 3), #""operator": {"type": "denoise"}"#)
        try job(
            "png-rgb-luma", "png-rgb-luma.png", try Self.png(width: 32, height: 32, channels: 3),
            #""operator": {"type": "denoise"}, "color": "luma", \#(baseline)"#)
        try job("npy-rgb-luma", "npy-rgb-luma.npy", Self.npy([3, 32, 32]), #""operator": {"type": "denoise"}, "color": "luma", \#(baseline)"#)
        try job(
            "gray-luma", "gray-luma.png", try Self.png(width: 32, height: 32, channels: 1),
            #""operator": {"type": "denoise"}, "color": "luma""#)
        try job("gray-replicate", "gray-replicate.npy", Self.npy([32, 32]), #""operator": {"type": "denoise"}, "color": "replicate""#)
        try s.drop("trailing.npy", Self.npy([1, 32, 32]))
        try s.drop("trailing.json", Data("{\n  \"version\": 1,\n  \"measurement\": \"trailing.npy\",\n  \"operator\": {\"type\": \"denoise\"},\n}\n".utf8))
        try s.drop("inpaint-truth.png", try Self.png(width: 32, height: 32, channels: 1))
        try job(
            "inpaint", "inpaint.npy", Self.npy([1, 32, 32]),
            #""operator": {"type": "inpainting", "box": [8, 8, 8, 8]}, "truth": "inpaint-truth.png", \#(baseline)"#)

        let r = try DaemonProcess.run(["--spool", s.path, "--model", model, "--once", "--threads", "1"], timeout: 300, executable: product)
        XCTAssertNotNil(r.status, r.stderr)
        XCTAssertEqual(s.visible("done"), ["inpaint", "npy-rgb-luma", "png-rgb-luma"], "failed: \(s.visible("failed"))\n\(r.stderr)")

        func refused(_ name: String, _ code: String, _ parts: [String], field: String? = nil, line: UInt = #line) {
            let e = s.errorJSON(name) ?? [:]
            XCTAssertEqual(e["error"] as? String, code, "\(name): \(e)", line: line)
            for p in parts { XCTAssertTrue((e["message"] as? String ?? "").contains(p), "\(name): \(p) not in \(e)", line: line) }
            if let field { XCTAssertEqual(e["field"] as? String, field, line: line) }
        }
        let model32 = "the model makes [1,32,32] images"
        refused(
            "sr-64", "measurement.shape",
            [
                "sr-64.npy: shape [1,64,64] does not fit super_resolution (factor 2) on this model",
                model32, "so the operator expects a [1,16,16] measurement",
            ], field: "measurement")
        refused("denoise-28", "measurement.shape", ["shape [28,28] does not fit denoise", model32, "[1,32,32] measurement"])
        refused("png-64", "measurement.shape", ["png-64.png: shape [1,64,64]", model32])
        refused("png-28", "measurement.shape", ["png-28.png: shape [1,28,28]", model32])
        refused("png-rgb", "measurement.shape", ["png-rgb.png: shape [3,32,32]", model32, #""color": "luma""#])
        refused("gray-luma", "manifest.invalid", [#"`color` "luma""#, "gray-luma.png has 1 channel"], field: "color")
        refused("gray-replicate", "manifest.invalid", [#"`color` "replicate""#], field: "color")
        refused("trailing", "manifest.invalid", ["line 5, column 1: trailing comma"])

        let metrics = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: s.url("done/png-rgb-luma/metrics.json"))) as? [String: Any])
        XCTAssertEqual(metrics["measurement_shape"] as? [Int], [1, 32, 32])
        XCTAssertEqual(metrics["color"] as? String, "luma")

        // Montage: a header above the labels, and the missing box hatched in the measurement panel.
        let m = try PNGImage.read(from: s.url("done/inpaint/montage.png").path)
        let px = { (x: Int, y: Int) in m.samples[(y * m.width + x) * m.channels] }
        let top = m.height - 4 - 128  // panels are 128 px tall, 4 px frame
        let labelStrip = 7 + 4
        XCTAssertGreaterThanOrEqual(top - labelStrip - 4, 10, "at least one header line above the labels")
        let headerInk = (4..<(top - labelStrip)).flatMap { y in (0..<m.width).map { px($0, y) } }.filter { $0 == 0 }.count
        XCTAssertGreaterThan(headerInk, 100)
        var hatched = 0
        for y in (top + 32)..<(top + 64) {
            for x in (4 + 32)..<(4 + 64) {
                XCTAssertEqual(px(x, y), (x + y) % 4 == 0 ? 0 : 255, "(\(x), \(y))")
                hatched += 1
            }
        }
        XCTAssertEqual(hatched, 32 * 32)
        // Observed pixels show the data (0.1 → 140), not the hatch.
        XCTAssertEqual(px(4 + 8, top + 8), 140)
    }

    /// The daemon's config goes through the same strict reader, and says where it broke.
    func testConfigSyntaxErrorsNameLineAndColumn() {
        XCTAssertThrowsError(try DaemonConfig.parse(Data("{\"jobs\": 1,\n \"jobs\": 2}".utf8), file: "dmilod.json")) { e in
            XCTAssertTrue("\(e)".contains("line 2, column 2: duplicate key \"jobs\""), "\(e)")
        }
        XCTAssertThrowsError(try DaemonConfig.parse(Data("{\"jobs\": 1, /* two */}".utf8), file: "dmilod.json")) { e in
            XCTAssertTrue("\(e)".contains("line 1, column 13: comments are not allowed"), "\(e)")
        }
    }
}
