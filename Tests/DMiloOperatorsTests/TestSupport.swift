import DMiloKernels
import Foundation
import XCTest

@testable import DMiloOperators

/// Shared helpers: seeded random tensors, the adjointness check, fixture loading.
enum TestSupport {
    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededRandom(seed: seed, stream: "operator-tests")
        return rng.gaussianTensor(shape: shape)
    }

    /// |⟨Ax, y⟩ − ⟨x, Aᵀy⟩| / (‖Ax‖·‖y‖) on random x, y.
    static func adjointMismatch(_ op: any MeasurementOperator, seed: UInt64 = 1) -> Double {
        let x = random(op.inputShape, seed: seed)
        let y = random(op.outputShape, seed: seed + 1000)
        let ax = op.apply(x)
        let aty = op.vjp(at: x, cotangent: y)
        XCTAssertEqual(ax.shape, op.outputShape, "\(op.name): apply shape")
        XCTAssertEqual(aty.shape, op.inputShape, "\(op.name): adjoint shape")
        return abs(ax.dot(y) - x.dot(aty)) / max(ax.norm * y.norm, 1e-30)
    }

    static var fixtures: [String: Any] {
        get throws {
            let url = try XCTUnwrap(
                Bundle.module.url(
                    forResource: "operator_fixtures", withExtension: "json",
                    subdirectory: "Fixtures"))
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        }
    }

    static func floats(_ v: Any?) throws -> [Float] {
        try XCTUnwrap(v as? [Any]).map { Float(try XCTUnwrap(($0 as? NSNumber)?.doubleValue)) }
    }

    static func ints(_ v: Any?) throws -> [Int] {
        try XCTUnwrap(v as? [Any]).map { try XCTUnwrap(($0 as? NSNumber)?.intValue) }
    }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    static func noFiles(_ name: String, _ field: String) throws -> Tensor {
        throw OperatorError(code: "file.missing", message: "no file \(name)", field: field)
    }
}
