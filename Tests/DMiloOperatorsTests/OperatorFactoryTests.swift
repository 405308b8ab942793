import DMiloKernels
import Foundation
import XCTest

@testable import DMiloOperators

final class OperatorFactoryTests: XCTestCase {
    let shape = [3, 24, 40]

    func make(
        _ json: String, shape: [Int]? = nil, loader: OperatorFactory.ArrayLoader = TestSupport.noFiles
    ) throws
        -> any MeasurementOperator
    {
        try OperatorFactory.make(
            spec: JSONSerialization.jsonObject(with: Data(json.utf8)), imageShape: shape ?? self.shape,
            loadArray: loader)
    }

    func testBuildsEveryTypeWithDocumentedGeometry() throws {
        let cases: [(String, String, [Int], Bool)] = [
            (#"{"type":"denoise"}"#, "denoise", [3, 24, 40], true),
            (#"{"type":"super_resolution","factor":4}"#, "super_resolution", [3, 6, 10], true),
            (#"{"type":"super_resolution","factor":2,"kernel":"box"}"#, "super_resolution", [3, 12, 20], true),
            (#"{"type":"inpainting","missing_fraction":0.7,"mask_seed":1}"#, "inpainting", [3, 24, 40], true),
            (#"{"type":"inpainting","box":[0,0,4,4]}"#, "inpainting", [3, 24, 40], true),
            (#"{"type":"gaussian_blur","size":7,"sigma":1.5}"#, "gaussian_blur", [3, 24, 40], true),
            (#"{"type":"motion_blur","size":9,"intensity":0.5,"kernel_seed":3}"#, "motion_blur", [3, 24, 40], true),
            (#"{"type":"compressed_sensing","ratio":0.05,"matrix_seed":3}"#, "compressed_sensing", [144], true),
            (#"{"type":"hdr","gain":2}"#, "hdr", [3, 24, 40], false),
        ]
        for (json, name, out, linear) in cases {
            let op = try make(json)
            XCTAssertEqual(op.name, name, json)
            XCTAssertEqual(op.inputShape, shape, json)
            XCTAssertEqual(op.outputShape, out, json)
            XCTAssertEqual(op.isLinear, linear, json)
        }
    }

    func testFilesAreLoadedThroughTheClosureWithTheirField() throws {
        var requests: [String] = []
        let loader: OperatorFactory.ArrayLoader = { name, field in
            requests.append("\(field)=\(name)")
            switch field {
            case "operator.mask": return Tensor(shape: [24, 40], repeating: 1)
            case "operator.kernel": return Tensor(shape: [4, 4], repeating: 1)
            default: return Tensor(shape: [10, 2880], repeating: 0.01)
            }
        }
        XCTAssertEqual(try make(#"{"type":"inpainting","mask":"m.png"}"#, loader: loader).name, "inpainting")
        XCTAssertEqual(try make(#"{"type":"blur","kernel":"k.npy"}"#, loader: loader).name, "blur")
        XCTAssertEqual(try make(#"{"type":"motion_blur","kernel":"calibration/mk.npy"}"#, loader: loader).name, "motion_blur")
        XCTAssertEqual(try make(#"{"type":"compressed_sensing","matrix":"A.npy"}"#, loader: loader).outputShape, [10])
        XCTAssertEqual(
            requests,
            [
                "operator.mask=m.png", "operator.kernel=k.npy", "operator.kernel=calibration/mk.npy",
                "operator.matrix=A.npy",
            ])
    }

    func testLoaderErrorsPassThroughAndShapeChecksNameTheField() {
        XCTAssertThrowsError(try make(#"{"type":"blur","kernel":"k.npy"}"#)) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "file.missing")
        }
        XCTAssertThrowsError(try make(#"{"type":"inpainting","mask":"m.png"}"#, loader: { _, _ in Tensor(shape: [40, 24]) })) {
            XCTAssertEqual(($0 as? OperatorError)?.code, "file.invalid")
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.mask")
        }
        XCTAssertThrowsError(try make(#"{"type":"super_resolution","factor":4}"#, shape: [3, 24, 42])) {
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.factor")
        }
        XCTAssertThrowsError(try make(#"{"type":"inpainting","box":[30,0,20,4]}"#)) {
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.box")
        }
        XCTAssertThrowsError(try make(#"{"type":"gaussian_blur","size":61,"sigma":3}"#)) {  // 30 ≥ H = 24
            XCTAssertEqual(($0 as? OperatorError)?.field, "operator.size")
        }
        for bad in [[3, 0, 4], [3, 4], [1 << 20, 1 << 20, 1 << 20], [3, -1, 4]] {
            XCTAssertThrowsError(try make(#"{"type":"denoise"}"#, shape: bad)) {
                XCTAssertEqual(($0 as? OperatorError)?.field, "image_shape")
            }
        }
    }
}
