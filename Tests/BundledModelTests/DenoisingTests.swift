import DMiloImage
import DMiloKernels
import DMiloModel
import Foundation
import XCTest

/// The bundled Fashion-MNIST DDPM is a real prior: on held-out test images (Tests/Data, never trained on), its x0
/// estimate from ε̂ at t = 100/200/300 has a small fraction of the MSE of the best affine shrinkage a·x_t + b fitted
/// on the same images (the model card's targets: ≤ 0.15 / 0.16 / 0.17).
final class DenoisingTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testX0EstimateBeatsBestAffineShrinkage() throws {
        let model = try UNet2DModel.load(path: Self.root.appendingPathComponent("Models/fashion-mnist-32").path)
        let dir = Self.root.appendingPathComponent("Tests/Data/fashion-mnist-test")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".png") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 16)
        let images = try files.prefix(16).map { try PNGImage.read(from: dir.appendingPathComponent($0).path).modelUnits() }
        let n = images[0].count
        let batch = Tensor(shape: [images.count, 1, 32, 32])
        for (k, im) in images.enumerated() { (batch.data + k * n).update(from: im.data, count: n) }
        let schedule = NoiseSchedule()
        for (t, limit) in [(100, 0.15), (200, 0.16), (300, 0.17)] {
            var rng = SeededRandom(seed: UInt64(t), stream: "denoising-test")
            let abar = schedule.alphaBar(t)
            let a = Float(abar.squareRoot()), s = Float((1 - abar).squareRoot())
            let xt = Tensor(shape: batch.shape)
            for i in 0..<xt.count { xt[i] = a * batch[i] + s * Float(rng.gaussian()) }
            let eps = try model.forward(xt, timestep: Float(t))
            var mseModel = 0.0
            for i in 0..<xt.count { let d = Double((xt[i] - s * eps[i]) / a - batch[i]); mseModel += d * d }
            mseModel /= Double(xt.count)
            // Least squares x0 ≈ c1·x_t + c0 over all pixels.
            var sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0
            for i in 0..<xt.count { let x = Double(xt[i]), y = Double(batch[i]); sx += x; sy += y; sxx += x * x; sxy += x * y }
            let m = Double(xt.count)
            let c1 = (m * sxy - sx * sy) / (m * sxx - sx * sx), c0 = (sy - c1 * sx) / m
            var mseAffine = 0.0
            for i in 0..<xt.count { let d = c1 * Double(xt[i]) + c0 - Double(batch[i]); mseAffine += d * d }
            mseAffine /= m
            let ratio = mseModel / mseAffine
            print(String(format: "t=%d: model MSE %.5f, best affine %.5f, ratio %.4f", t, mseModel, mseAffine, ratio))
            XCTAssertLessThan(ratio, limit, "t = \(t)")
        }
    }
}
