import DMiloKernels
import XCTest
@testable import DMiloModel

/// The ADM input VJP against central finite differences of its own forward (independent of the deepinv fixtures):
/// covers the resampling ResBlocks (avg-pool / nearest inside the block), both qkv orders and additive time shift.
final class ADMFiniteDifferenceTests: XCTestCase {
    func check(_ name: String, timestep: Float) throws {
        let net = try DiffusionModels.load(path: ADMFixtureTests.modelPath(name))
        let x = try Fixtures.array(name, "x.npy"), c = try Fixtures.array(name, "cotangent.npy")
        let (_, tape) = try net.forwardForVJP(x, timestep: timestep)
        let g = try net.vjp(tape, cotangent: c)
        var rng = SeededRandom(seed: 11, stream: name)
        let eps: Float = 1e-2
        for _ in 0..<2 {
            let v = rng.gaussianTensor(shape: x.shape)
            let xp = x.copy(), xm = x.copy()
            xp.axpy(eps, v); xm.axpy(-eps, v)
            let fd = (try net.forward(xp, timestep: timestep).dot(c) - net.forward(xm, timestep: timestep).dot(c)) / (2 * Double(eps))
            let an = g.dot(v)
            XCTAssertEqual(an, fd, accuracy: 2e-3 * max(abs(fd), 1), "\(name): analytic \(an) vs finite difference \(fd)")
        }
    }

    func testADMResblockUpDownLegacyOrder() throws { try check("adm_ffhq_small", timestep: 250) }
    func testADMConvResamplingAdditiveShift() throws { try check("adm_variants_f16", timestep: 700) }
}
