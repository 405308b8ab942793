import DMiloFormats
import DMiloKernels
import Foundation

@testable import DMiloModel

/// Paths of the golden fixtures written by Tools/make_fixtures.py.
enum Fixtures {
    static let names = ["cifar10_layout", "bundled_f16", "scale_shift_bf16", "legacy_attention", "fourier_misc"]

    static func folder(_ name: String) -> String {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else { fatalError("fixtures not bundled") }
        return url.appendingPathComponent(name).path
    }

    static func array(_ name: String, _ file: String) throws -> Tensor {
        try NPY.readTensor(path: folder(name) + "/" + file)
    }

    /// max|a − b| / max|b|
    static func relativeMaxError(_ a: Tensor, _ b: Tensor) -> Float {
        var num: Float = 0, den: Float = 0
        for i in 0..<b.count { num = max(num, abs(a[i] - b[i])); den = max(den, abs(b[i])) }
        return num / max(den, 1e-30)
    }

    /// A scratch directory removed at process exit is not needed: tests use unique names under tmp.
    static func tempDir() -> String {
        let p = NSTemporaryDirectory() + "dmilo-model-tests-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
}
