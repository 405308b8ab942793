import DMiloKernels
import DMiloOperators
import Foundation
import XCTest

@testable import DMiloJobs

/// A measurement is checked against the operator's expectation for the model's image, and refused with a message
/// naming all three; `color` converts RGB ↔ gray where the manifest asks for it.
final class MeasurementGeometryTests: XCTestCase {
    func geometry(_ spec: OperatorSpec, image: [Int] = [1, 32, 32], color: ColorConversion? = nil) throws -> MeasurementGeometry {
        let op = try OperatorFactory.make(spec: spec, imageShape: image) { _, _ in Tensor(shape: [1]) }
        return MeasurementGeometry(
            imageShape: image, expected: op.outputShape, operatorDescription: MeasurementGeometry.describe(spec),
            color: color, manifestFile: "job.json")
    }

    func refusal(_ g: MeasurementGeometry, _ shape: [Int]) -> JobError? {
        do { _ = try g.fit(Tensor(shape: shape, repeating: 0), name: "y.npy") } catch let e as JobError { return e } catch { return nil }
        return nil
    }

    func testShapeRefusalsNameTheModelTheOperatorAndTheInput() throws {
        let sr2 = try geometry(.superResolution(factor: 2, kernel: .bicubic))
        XCTAssertEqual(
            refusal(sr2, [1, 64, 64]),
            JobError(
                code: "measurement.shape",
                message:
                    "y.npy: shape [1,64,64] does not fit super_resolution (factor 2) on this model: the model makes [1,32,32] images, "
                    + "so the operator expects a [1,16,16] measurement", field: "measurement"))
        let denoise = try geometry(.denoise)
        XCTAssertTrue(refusal(denoise, [28, 28])?.message.contains("shape [28,28] does not fit denoise") == true)
        let rgb = try XCTUnwrap(refusal(denoise, [3, 32, 32]))
        XCTAssertEqual(rgb.code, "measurement.shape")
        XCTAssertTrue(rgb.message.contains("\"color\": \"luma\""), rgb.message)
        let cs = try geometry(.compressedSensing(.gaussian(ratio: 0.25, seed: 1)))
        XCTAssertTrue(refusal(cs, [200])?.message.contains("compressed_sensing (ratio 0.25)") == true)
        XCTAssertTrue(refusal(cs, [200])?.message.contains("expects a [256] measurement") == true)
        // What fits: exact, (H, W) for one channel, the CS vector.
        XCTAssertNil(refusal(denoise, [1, 32, 32]))
        XCTAssertNil(refusal(denoise, [32, 32]))
        XCTAssertNil(refusal(sr2, [16, 16]))
        XCTAssertNil(refusal(cs, [256]))
    }

    func testLumaUsesBT601WeightsAndReplicateCopies() throws {
        let luma = try geometry(.denoise, color: .luma)
        let rgb = Tensor(shape: [3, 32, 32], repeating: 0)
        for p in 0..<1024 { rgb[p] = 1; rgb[1024 + p] = -1; rgb[2048 + p] = Float(p % 2) }
        let y = try luma.fit(rgb, name: "y.npy")
        XCTAssertEqual(y.shape, [1, 32, 32])
        XCTAssertEqual(y[0], 0.299 - 0.587, accuracy: 1e-6)
        XCTAssertEqual(y[1], 0.299 - 0.587 + 0.114, accuracy: 1e-6)
        let replicate = try geometry(.denoise, image: [3, 32, 32], color: .replicate)
        let gray = Tensor(shape: [32, 32], values: (0..<1024).map { Float($0) / 1024 })
        let r = try replicate.fit(gray, name: "y.npy")
        XCTAssertEqual(r.shape, [3, 32, 32])
        XCTAssertEqual(Array(r.array[2048..<3072]), gray.array)
        // The truth follows the measurement's conversion.
        XCTAssertEqual(luma.convertTruth(rgb).shape, [1, 32, 32])
        XCTAssertEqual(luma.convertTruth(y).shape, [1, 32, 32])
    }

    func testColorThatDoesNotApplyIsAManifestError() throws {
        // luma on a gray measurement, luma for an RGB model, replicate for a gray model: manifest.invalid on `color`.
        for (g, shape) in [
            (try geometry(.denoise, color: .luma), [1, 32, 32]),
            (try geometry(.denoise, image: [3, 32, 32], color: .luma), [3, 32, 32]),
            (try geometry(.denoise, color: .replicate), [1, 32, 32]),
        ] {
            let e = try XCTUnwrap(refusal(g, shape))
            XCTAssertEqual(e.code, "manifest.invalid", e.message)
            XCTAssertEqual(e.field, "color")
        }
        // A converted measurement of the wrong size is still measurement.shape, naming what was given.
        let e = try XCTUnwrap(refusal(try geometry(.denoise, color: .luma), [3, 64, 64]))
        XCTAssertEqual(e.code, "measurement.shape")
        XCTAssertTrue(e.message.contains("[3,64,64]"), e.message)
        // color on compressed sensing is refused when the manifest is read.
        XCTAssertThrowsError(
            try Manifest.parse(Data(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "compressed_sensing", "ratio": 0.5, "matrix_seed": 1}, "color": "luma"}"#.utf8), file: "job.json")
        ) { e in
            XCTAssertEqual((e as? JobError)?.field, "color")
        }
        XCTAssertEqual(try Manifest.parse(Data(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "denoise"}, "color": "replicate"}"#.utf8), file: "job.json").color, .replicate)
    }
}
