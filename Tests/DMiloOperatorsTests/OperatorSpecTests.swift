import DMiloKernels
import Foundation
import XCTest

@testable import DMiloOperators

/// Strict parsing of the manifest `operator` object, from JSON text as the jobs layer will see it.
final class OperatorSpecTests: XCTestCase {
    func parse(_ json: String) throws -> OperatorSpec {
        try OperatorSpec(json: JSONSerialization.jsonObject(with: Data(json.utf8)))
    }

    func expectError(
        _ json: String, code: String = "manifest.invalid", field: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try parse(json), json, file: file, line: line) { e in
            guard let e = e as? OperatorError else { return XCTFail("not an OperatorError: \(e)", file: file, line: line) }
            XCTAssertEqual(e.code, code, json, file: file, line: line)
            XCTAssertEqual(e.field, field, json, file: file, line: line)
            XCTAssertFalse(e.message.isEmpty)
        }
    }

    func testValidSpecs() throws {
        XCTAssertEqual(try parse(#"{"type":"denoise"}"#), .denoise)
        XCTAssertEqual(try parse(#"{"type":"super_resolution","factor":4}"#), .superResolution(factor: 4, kernel: .bicubic))
        XCTAssertEqual(try parse(#"{"type":"super_resolution","factor":2.0,"kernel":"box"}"#), .superResolution(factor: 2, kernel: .box))
        XCTAssertEqual(try parse(#"{"type":"inpainting","mask":"m.png"}"#), .inpainting(.file("m.png")))
        XCTAssertEqual(
            try parse(#"{"type":"inpainting","missing_fraction":0.7,"mask_seed":18446744073709551615}"#),
            .inpainting(.random(missingFraction: 0.7, seed: .max)))
        XCTAssertEqual(try parse(#"{"type":"inpainting","box":[1,2,3,4]}"#), .inpainting(.box(x: 1, y: 2, width: 3, height: 4)))
        XCTAssertEqual(try parse(#"{"type":"blur","kernel":"calibration/k.npy"}"#), .blur(kernelFile: "calibration/k.npy"))
        XCTAssertEqual(try parse(#"{"type":"gaussian_blur","size":61,"sigma":3}"#), .gaussianBlur(size: 61, sigma: 3))
        XCTAssertEqual(try parse(#"{"type":"motion_blur","kernel":"k.npy"}"#), .motionBlur(.file("k.npy")))
        XCTAssertEqual(
            try parse(#"{"type":"motion_blur","size":31,"intensity":0.5,"kernel_seed":123}"#),
            .motionBlur(.random(size: 31, intensity: 0.5, seed: 123)))
        XCTAssertEqual(try parse(#"{"type":"compressed_sensing","matrix":"A.npy"}"#), .compressedSensing(.file("A.npy")))
        XCTAssertEqual(
            try parse(#"{"type":"compressed_sensing","ratio":0.1,"matrix_seed":0}"#),
            .compressedSensing(.gaussian(ratio: 0.1, seed: 0)))
        XCTAssertEqual(try parse(#"{"type":"hdr","gain":4}"#), .hdr(gain: 4))
    }

    func testUnknownTypeAndKeys() {
        expectError(#"{"type":"deblur"}"#, code: "operator.unknown", field: "operator.type")
        expectError(#"{"type":"super_resolution","factor":4,"factr":4}"#, field: "operator.factr")
        expectError(#"{"type":"denoise","sigma":1}"#, field: "operator.sigma")
        expectError(#"{"type":"hdr","gain":2,"kernel":"box"}"#, field: "operator.kernel")
        expectError(#"{"factor":4}"#, field: "operator.type")
        expectError(#"{"type":4}"#, field: "operator.type")
        expectError(#"["denoise"]"#, field: "operator")
    }

    func testMissingAndMistypedFields() {
        expectError(#"{"type":"super_resolution"}"#, field: "operator.factor")
        expectError(#"{"type":"super_resolution","factor":"4"}"#, field: "operator.factor")
        expectError(#"{"type":"super_resolution","factor":4.5}"#, field: "operator.factor")
        expectError(#"{"type":"super_resolution","factor":true}"#, field: "operator.factor")
        expectError(#"{"type":"super_resolution","factor":3}"#, field: "operator.factor")
        expectError(#"{"type":"super_resolution","factor":4,"kernel":"lanczos"}"#, field: "operator.kernel")
        expectError(#"{"type":"gaussian_blur","size":4,"sigma":1}"#, field: "operator.size")
        expectError(#"{"type":"gaussian_blur","size":5}"#, field: "operator.sigma")
        expectError(#"{"type":"gaussian_blur","size":5,"sigma":null}"#, field: "operator.sigma")
        expectError(#"{"type":"hdr","gain":-1}"#, field: "operator.gain")
        expectError(#"{"type":"hdr","gain":false}"#, field: "operator.gain")
        expectError(#"{"type":"blur","kernel":""}"#, field: "operator.kernel")
        expectError(#"{"type":"blur","kernel":5}"#, field: "operator.kernel")
        expectError(#"{"type":"blur"}"#, field: "operator.kernel")
    }

    func testAlternativesAreExclusive() {
        expectError(#"{"type":"inpainting"}"#, field: "operator")
        expectError(#"{"type":"inpainting","mask":"m.png","box":[0,0,1,1]}"#, field: "operator.box")
        expectError(#"{"type":"inpainting","missing_fraction":0.5}"#, field: "operator.mask_seed")
        expectError(#"{"type":"inpainting","mask":"m.png","mask_seed":1}"#, field: "operator.mask_seed")
        expectError(#"{"type":"inpainting","missing_fraction":1.0,"mask_seed":1}"#, field: "operator.missing_fraction")
        expectError(#"{"type":"inpainting","missing_fraction":0.5,"mask_seed":-1}"#, field: "operator.mask_seed")
        expectError(#"{"type":"inpainting","missing_fraction":0.5,"mask_seed":1.5}"#, field: "operator.mask_seed")
        expectError(#"{"type":"inpainting","box":[0,0,1]}"#, field: "operator.box")
        expectError(#"{"type":"inpainting","box":[0,0,0,1]}"#, field: "operator.box")
        expectError(#"{"type":"motion_blur","kernel":"k.npy","size":5}"#, field: "operator.size")
        expectError(#"{"type":"motion_blur","size":5,"intensity":0.5}"#, field: "operator.kernel_seed")
        expectError(#"{"type":"motion_blur","kernel":"k.npy","intensity":0.5}"#, field: "operator.intensity")
        expectError(#"{"type":"motion_blur","size":5,"intensity":2,"kernel_seed":1}"#, field: "operator.intensity")
        expectError(#"{"type":"compressed_sensing","ratio":0.1}"#, field: "operator.matrix_seed")
        expectError(#"{"type":"compressed_sensing","matrix":"A.npy","ratio":0.1}"#, field: "operator.ratio")
        expectError(#"{"type":"compressed_sensing","ratio":0,"matrix_seed":1}"#, field: "operator.ratio")
    }

    /// `geometry` is a blur option only; `same` is the default and stays implicit in the canonical JSON.
    func testBlurGeometryOption() throws {
        XCTAssertEqual(try parse(#"{"type":"blur","kernel":"k.npy","geometry":"paper"}"#), .blur(kernelFile: "k.npy", geometry: .paper))
        XCTAssertEqual(try parse(#"{"type":"gaussian_blur","size":3,"sigma":1,"geometry":"same"}"#), .gaussianBlur(size: 3, sigma: 1))
        XCTAssertEqual(try parse(#"{"type":"motion_blur","kernel":"k.npy","geometry":"paper"}"#).blurGeometry, .paper)
        XCTAssertNil(try parse(#"{"type":"blur","kernel":"k.npy"}"#).jsonObject["geometry"])
        expectError(#"{"type":"blur","kernel":"k.npy","geometry":"valid"}"#, field: "operator.geometry")
        expectError(#"{"type":"blur","kernel":"k.npy","geometry":1}"#, field: "operator.geometry")
        expectError(#"{"type":"super_resolution","factor":2,"geometry":"paper"}"#, field: "operator.geometry")
    }

    func testFilesAndCanonicalJSONRoundTrip() throws {
        let specs = [
            #"{"type":"inpainting","mask":"m.png"}"#, #"{"type":"super_resolution","factor":4}"#,
            #"{"type":"motion_blur","size":31,"intensity":0.5,"kernel_seed":123}"#,
            #"{"type":"inpainting","box":[1,2,3,4]}"#, #"{"type":"compressed_sensing","ratio":0.1,"matrix_seed":7}"#,
            #"{"type":"inpainting","missing_fraction":0.25,"mask_seed":18446744073709551615}"#,
            #"{"type":"gaussian_blur","size":61,"sigma":3,"geometry":"paper"}"#,
            #"{"type":"blur","kernel":"k.npy","geometry":"paper"}"#,
        ]
        for s in specs {
            let spec = try parse(s)
            let text = try JSONSerialization.data(withJSONObject: spec.jsonObject)
            XCTAssertEqual(try OperatorSpec(json: JSONSerialization.jsonObject(with: text)), spec, s)
        }
        XCTAssertEqual(try parse(#"{"type":"inpainting","mask":"m.png"}"#).files.map { $0.field + "=" + $0.name }, ["operator.mask=m.png"])
        XCTAssertEqual(try parse(#"{"type":"compressed_sensing","matrix":"A.npy"}"#).files.map { $0.field }, ["operator.matrix"])
        XCTAssertTrue(try parse(#"{"type":"hdr","gain":2}"#).files.isEmpty)
    }
}
