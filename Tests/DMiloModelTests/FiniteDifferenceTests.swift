import DMiloKernels
import XCTest

@testable import DMiloModel

/// The input VJP against central finite differences of the forward pass (independent of the PyTorch fixtures):
/// ⟨vjp(c), v⟩ ≈ (L(x + εv) − L(x − εv)) / 2ε with L(x) = ⟨c, UNet(x, t)⟩, for random directions v.
final class FiniteDifferenceTests: XCTestCase {
    func checkDirectionalDerivatives(_ name: String, timestep: Float) throws {
        let model = try UNet2DModel.load(path: Fixtures.folder(name))
        let x = try Fixtures.array(name, "x.npy"), c = try Fixtures.array(name, "cotangent.npy")
        let (_, tape) = try model.forwardForVJP(x, timestep: timestep)
        let g = try model.vjp(tape, cotangent: c)
        var rng = SeededRandom(seed: 7, stream: name)
        let eps: Float = 1e-2
        for _ in 0..<3 {
            let v = rng.gaussianTensor(shape: x.shape)
            let xp = x.copy(), xm = x.copy()
            xp.axpy(eps, v); xm.axpy(-eps, v)
            let lp = try model.forward(xp, timestep: timestep).dot(c), lm = try model.forward(xm, timestep: timestep).dot(c)
            let fd = (lp - lm) / (2 * Double(eps))
            let an = g.dot(v)
            XCTAssertEqual(an, fd, accuracy: 2e-3 * max(abs(fd), 1), "\(name): analytic \(an) vs finite difference \(fd)")
        }
    }

    func testFourierModel() throws { try checkDirectionalDerivatives("fourier_misc", timestep: 0.3) }
    func testScaleShiftModel() throws { try checkDirectionalDerivatives("scale_shift_bf16", timestep: 77) }
    func testLegacyModel() throws { try checkDirectionalDerivatives("legacy_attention", timestep: 500) }
}
