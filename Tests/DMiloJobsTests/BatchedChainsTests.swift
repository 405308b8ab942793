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

    /// With replicas the chains run in groups on threads of their own (one sub-batch each); the samples are the
    /// same chains as the single batch, and every batch item is still counted.
    func testChainGroupsOnThreadsEqualOneBatch() throws {
        let model = try UNet2DModel.load(path: Self.root.appendingPathComponent("Models/fashion-mnist-32").path)
        let truth = try PNGImage.read(from: Self.root.appendingPathComponent("Tests/Data/fashion-mnist-test/test-00104.png").path)
            .modelUnits()
        let op = try Inpainting(missingFraction: 0.7, maskSeed: 5, imageShape: truth.shape)
        let prob = InverseProblem(model: model, schedule: NoiseSchedule(), op: op, y: op.apply(truth), noiseSigma: 0.01)
        for exact in [false, true] {
            var p = SolverParameters(method: .daps)
            p.annealingSteps = 3; p.odeSteps = 2; p.mcmcSteps = 8; p.budget = 100; p.seed = 9; p.dapsExactLikelihood = exact
            let one = try DAPSSolver.solve(p, problem: prob, chains: [0, 1, 2, 3, 4], progress: { _ in true }, observer: nil)
            let replicas: [any NoisePredictor] = [model, model.replica(), model.replica()]
            let grouped = try Threading.withBudget(3) {
                try DAPSSolver.solve(p, problem: prob, chains: [0, 1, 2, 3, 4], replicas: replicas, progress: { _ in true }, observer: nil)
            }
            XCTAssertEqual(grouped.unetEvaluations, 5 * 3 * 2)
            XCTAssertEqual(grouped.samples.count, 5)
            var worst: Float = 0
            for c in 0..<5 { for i in 0..<truth.count { worst = max(worst, abs(grouped.samples[c][i] - one.samples[c][i])) } }
            XCTAssertLessThan(worst, 1e-4, "exact \(exact): largest difference between grouped and single-batch chains")
        }
    }
}
