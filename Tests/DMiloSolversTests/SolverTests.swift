import DMiloKernels
import DMiloModel
import DMiloOperators
import XCTest

@testable import DMiloSolvers

final class SolverTests: XCTestCase {
    func testAdamMatchesHandComputedSteps() {
        let p = Tensor(shape: [2], values: [1.0, -2.0])
        let adam = Adam(params: [p], learningRates: [0.1])
        // Step 1: m̂ = g, v̂ = g² → update = lr·g/(|g| + ε) = lr·sign(g).
        adam.update(gradients: [Tensor(shape: [2], values: [0.5, -4.0])])
        XCTAssertEqual(p[0], 0.9, accuracy: 1e-6)
        XCTAssertEqual(p[1], -1.9, accuracy: 1e-6)
        // Step 2 with g = (1, 0): m = (0.9·0.05 + 0.1, 0.9·(−0.4)), v = (0.999·0.00025 + 0.001, 0.999·0.016).
        adam.update(gradients: [Tensor(shape: [2], values: [1.0, 0.0])])
        let m0 = 0.9 * 0.05 + 0.1, v0 = 0.999 * 0.00025 + 0.001
        let m1 = 0.9 * -0.4, v1 = 0.999 * 0.016
        let bc1 = 1 - 0.81, bc2 = 1 - 0.999 * 0.999
        XCTAssertEqual(Double(p[0]), 0.9 - 0.1 * (m0 / bc1) / ((v0 / bc2).squareRoot() + 1e-8), accuracy: 1e-5)
        XCTAssertEqual(Double(p[1]), -1.9 - 0.1 * (m1 / bc1) / ((v1 / bc2).squareRoot() + 1e-8), accuracy: 1e-5)
    }

    func problem(_ m: GaussianPredictor, op: any MeasurementOperator, truth: Tensor, sigma: Double = 0.01) -> InverseProblem {
        let y = op.apply(truth)
        var r = SeededRandom(seed: 9, stream: "noise")
        for i in 0..<y.count { y[i] += Float(r.gaussian() * sigma) }
        return InverseProblem(model: m, schedule: m.schedule, op: op, y: y, noiseSigma: sigma)
    }

    func quick(_ method: SolverMethod, op: String) -> SolverParameters {
        var p = SolverDefaults.parameters(method: method, operatorType: op)
        p.outer = 3; p.inner = 30; p.dpsSteps = 50
        return p
    }

    /// Every method, on inpainting with the exact Gaussian prior: images in [-1, 1], budgets respected exactly, and the
    /// iterative methods drive the data residual down across their iterations.
    func testMethodsReduceTheResidualWithinBudget() throws {
        let m = GaussianPredictor()
        let truth = gaussianImage(m, seed: 1)
        let op = try Inpainting(missingFraction: 0.5, maskSeed: 4, imageShape: [1, 8, 8])
        let prob = problem(m, op: op, truth: truth, sigma: 0.05)
        for method in [SolverMethod.dmiloPGD, .dmilo, .dmplug, .dps, .baseline] {
            var p = quick(method, op: "inpainting")
            if method == .dmplug { p.inner = 300 }
            p.budget = 1000
            let res = try Solvers.run(p, problem: prob, makeReplica: { m })
            XCTAssertLessThanOrEqual(res.unetEvaluations, 1000, "\(method)")
            for i in 0..<res.x.count { XCTAssertLessThanOrEqual(abs(res.x[i]), 1, "\(method)") }
            if method != .baseline {
                XCTAssertLessThan(res.residualHistory.last!, res.residualHistory.first! - 0.1, "\(method): \(res.residualHistory)")
            }
            XCTAssertLessThan(res.residualHistory.last!, 0.55, "\(method)")
        }
    }

    /// DPS with the exact prior denoises: closer to the truth than the noisy measurement at high noise.
    func testDPSDenoisesBetterThanTheMeasurement() throws {
        let m = GaussianPredictor()
        let truth = gaussianImage(m, seed: 3)
        let prob = problem(m, op: try Denoise(imageShape: [1, 8, 8]), truth: truth, sigma: 0.3)
        var p = SolverParameters(method: .dps)
        p.dpsSteps = 100; p.dpsZeta = 0.3
        let res = try Solvers.run(p, problem: prob)
        XCTAssertEqual(res.unetEvaluations, 100)
        XCTAssertLessThan(mse(res.x, truth), mse(prob.y, truth))
    }

    func testBudgetIsAHardCapAndTooSmallIsRefused() throws {
        let m = GaussianPredictor()
        let op = try Denoise(imageShape: [1, 8, 8])
        let prob = problem(m, op: op, truth: gaussianImage(m, seed: 2))
        var p = quick(.dmilo, op: "denoise")
        p.budget = 57
        let res = try Solvers.run(p, problem: prob)
        XCTAssertLessThanOrEqual(res.unetEvaluations, 57)
        XCTAssertEqual(res.stoppedBy, .budget)
        p.budget = 4
        XCTAssertThrowsError(try Solvers.run(p, problem: prob)) { e in
            XCTAssertEqual((e as? SolverError)?.code, "budget.exceeded")
        }
    }

    func testCancellationReturnsCurrentIterate() throws {
        let m = GaussianPredictor()
        let op = try Denoise(imageShape: [1, 8, 8])
        let prob = problem(m, op: op, truth: gaussianImage(m, seed: 2))
        var calls = 0
        let res = try Solvers.run(
            quick(.dmiloPGD, op: "denoise"), problem: prob,
            progress: { _ in
                calls += 1; return calls < 3
            })
        XCTAssertEqual(res.stoppedBy, .cancelled)
        XCTAssertEqual(res.x.count, 64)
    }

    /// The discrepancy principle stops an easy problem (denoising, the prior is exact) before the iteration count.
    func testDiscrepancyRuleStopsEarly() throws {
        let m = GaussianPredictor()
        let op = try Denoise(imageShape: [1, 8, 8])
        let prob = problem(m, op: op, truth: gaussianImage(m, seed: 5), sigma: 0.2)
        var p = quick(.dmiloPGD, op: "denoise")
        p.outer = 8
        let full = try Solvers.run(p, problem: prob)
        p.discrepancyTau = 1.5
        let early = try Solvers.run(p, problem: prob)
        XCTAssertEqual(early.stoppedBy, .discrepancy)
        XCTAssertLessThan(early.unetEvaluations, full.unetEvaluations)
    }

    func testMemoryPlanRefusesWhatDoesNotFit() throws {
        var p = SolverParameters(method: .dmilo)
        p.steps = 4
        let one = try MemoryPlan.plan(p, stepBytes: 100, residentBytes: 1000, budgetBytes: 1100)
        XCTAssertEqual(one.replicas, 1)
        XCTAssertThrowsError(try MemoryPlan.plan(p, stepBytes: 100, residentBytes: 1000, budgetBytes: 1099)) { e in
            XCTAssertEqual((e as? SolverError)?.code, "memory.budget")
        }
        p.method = .dmplug
        XCTAssertEqual(try MemoryPlan.plan(p, stepBytes: 100, residentBytes: 1000, budgetBytes: nil).estimatedBytes, 1400)
        XCTAssertThrowsError(try MemoryPlan.plan(p, stepBytes: 100, residentBytes: 1000, budgetBytes: 1399))
        // A client's step count that would wrap Int is refused, never wrapped into a small estimate.
        p.steps = 870_058_519_462
        XCTAssertThrowsError(try MemoryPlan.plan(p, stepBytes: 30 << 20, residentBytes: 14 << 20, budgetBytes: 2048 << 20)) { e in
            XCTAssertEqual((e as? SolverError)?.code, "memory.budget")
        }
        p.steps = Int.max
        XCTAssertThrowsError(try MemoryPlan.plan(p, stepBytes: 30 << 20, residentBytes: 14 << 20, budgetBytes: nil)) { e in
            XCTAssertEqual((e as? SolverError)?.code, "memory.budget")
        }
    }

    /// The smoothness baseline fills a smooth image's holes far better than leaving them empty.
    func testBaselineHarmonicFill() throws {
        let m = GaussianPredictor()
        let truth = Tensor(shape: [1, 8, 8])
        for i in 0..<8 { for j in 0..<8 { truth[i * 8 + j] = Float(i + j) / 14 - 0.5 } }
        let op = try Inpainting(missingFraction: 0.6, maskSeed: 1, imageShape: [1, 8, 8])
        let prob = problem(m, op: op, truth: truth, sigma: 0)
        let res = try Solvers.run(SolverParameters(method: .baseline), problem: prob)
        XCTAssertLessThan(mse(res.x, truth), 0.1 * mse(op.adjoint(prob.y), truth))
        XCTAssertEqual(res.unetEvaluations, 0)
    }

    /// lr_x rule: 0.5/‖A‖² reproduces the official SR×4 value 8 (‖A‖² = 1/16 for an averaging ×4 resizer).
    func testPGDStepSizeRuleMatchesOfficialValues() throws {
        var p = SolverParameters(method: .dmiloPGD)
        XCTAssertEqual(try DMILOPGDSolver.stepSize(p, op: try SuperResolution(factor: 4, kernel: .box, imageShape: [1, 16, 16])), 8, accuracy: 0.05)
        XCTAssertEqual(try DMILOPGDSolver.stepSize(p, op: try Inpainting(missingFraction: 0.7, maskSeed: 1, imageShape: [1, 8, 8])), 0.5, accuracy: 1e-3)
        p.lrX = 3
        XCTAssertEqual(try DMILOPGDSolver.stepSize(p, op: try Denoise(imageShape: [1, 4, 4])), 3)
    }

    func testSameSeedSameResultDifferentSeedDifferent() throws {
        let m = GaussianPredictor()
        let op = try Inpainting(missingFraction: 0.5, maskSeed: 4, imageShape: [1, 8, 8])
        let prob = problem(m, op: op, truth: gaussianImage(m, seed: 1))
        var p = quick(.dmilo, op: "inpainting"); p.outer = 1; p.inner = 5
        let a = try Solvers.run(p, problem: prob), b = try Solvers.run(p, problem: prob)
        XCTAssertEqual(a.x.array, b.x.array)
        p.seed = 1
        XCTAssertNotEqual(try Solvers.run(p, problem: prob).x.array, a.x.array)
    }

    /// `initialNoise` replaces the seeded draw (for cross-checks with Tools/reference_dmilo.py): with it the seed no
    /// longer matters, without it the result changes, and a wrong size is refused.
    func testInjectedInitialNoiseReplacesTheSeededDraw() throws {
        let m = GaussianPredictor()
        let op = try Inpainting(missingFraction: 0.5, maskSeed: 4, imageShape: [1, 8, 8])
        let prob = problem(m, op: op, truth: gaussianImage(m, seed: 1))
        for method in [SolverMethod.dmilo, .dmiloPGD, .dmplug] {
            var p = quick(method, op: "inpainting"); p.outer = 1; p.inner = 5
            var rng = SeededRandom(seed: 3, stream: "test-noise")
            p.initialNoise = rng.gaussianTensor(shape: [1, 8, 8]).array
            let a = try Solvers.run(p, problem: prob, makeReplica: { m })
            p.seed = 7
            XCTAssertEqual(try Solvers.run(p, problem: prob, makeReplica: { m }).x.array, a.x.array, method.rawValue)
            p.initialNoise = nil
            XCTAssertNotEqual(try Solvers.run(p, problem: prob, makeReplica: { m }).x.array, a.x.array, method.rawValue)
            p.initialNoise = [Float](repeating: 0, count: 63)
            XCTAssertThrowsError(try Solvers.run(p, problem: prob, makeReplica: { m })) { e in
                XCTAssertEqual((e as? SolverError)?.code, "solver.invalid")
            }
        }
    }
}
