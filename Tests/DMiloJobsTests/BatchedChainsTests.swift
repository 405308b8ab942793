import DMiloImage
import DMiloKernels
import DMiloModel
import DMiloOperators
import Foundation
import XCTest

@testable import DMiloSolvers

/// DAPS's K chains through the bundled UNet as one batch of K give the same samples as each chain run alone with
/// its seed (the batch path of the engine agrees with batch 1 to float rounding, and the chain bookkeeping keeps
/// every chain on its own random stream).
final class BatchedChainsTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testBatchedChainsThroughTheBundledUNetEqualSequentialChains() throws {
        let model = try UNet2DModel.load(path: Self.root.appendingPathComponent("Models/fashion-mnist-32").path)
        let truth = try PNGImage.read(from: Self.root.appendingPathComponent("Tests/Data/fashion-mnist-test/test-00103.png").path)
            .modelUnits()
        let op = try SuperResolution(factor: 2, kernel: .bicubic, imageShape: truth.shape)
        let prob = InverseProblem(model: model, schedule: NoiseSchedule(), op: op, y: op.apply(truth), noiseSigma: 0.01)
        var p = SolverParameters(method: .daps)
        p.annealingSteps = 4; p.odeSteps = 2; p.mcmcSteps = 10; p.budget = 100; p.seed = 3
        let batched = try DAPSSolver.solve(p, problem: prob, chains: [0, 1, 2], progress: { _ in true }, observer: nil)
        XCTAssertEqual(batched.unetEvaluations, 3 * 4 * 2)
        var worst: Float = 0
        for c in 0..<3 {
            let alone = try DAPSSolver.solve(p, problem: prob, chains: [c], progress: { _ in true }, observer: nil)
            for i in 0..<truth.count { worst = max(worst, abs(batched.samples[c][i] - alone.samples[0][i])) }
        }
        XCTAssertLessThan(worst, 1e-4, "largest difference between a batched chain and the same chain alone")
    }
}
