import DMiloKernels
import DMiloModel
import DMiloOperators
import Foundation
import XCTest

@testable import DMiloSolvers

/// y = a·x elementwise: a linear operator whose Gaussian posterior is known pixel by pixel.
final class ScaleOperator: MeasurementOperator {
    let name = "scale"
    let inputShape: [Int]
    var outputShape: [Int] { inputShape }
    let isLinear = true
    let a: Float
    init(a: Float, shape: [Int]) { self.a = a; inputShape = shape }
    func apply(_ x: Tensor) -> Tensor {
        let y = Tensor(shape: inputShape)
        for i in 0..<y.count { y[i] = a * x[i] }
        return y
    }
    func vjp(at x: Tensor, cotangent: Tensor) -> Tensor { apply(cotangent) }
}

final class DAPSTests: XCTestCase {
    let schedule = NoiseSchedule()

    func noise(_ shape: [Int], seed: UInt64) -> Tensor {
        var r = SeededRandom(seed: seed, stream: "daps-test")
        return r.gaussianTensor(shape: shape)
    }

    /// One DDIM step written out here, independently of DDIMStep (docs/algorithms.md §1.3).
    func ddim(_ x: Tensor, from t: Int, to p: Int, model: GaussianPredictor) throws -> Tensor {
        let e = try model.forward(x, timestep: Float(t))
        let abT = schedule.alphaBar(t), abP = p < 0 ? 1.0 : schedule.alphaBar(p)
        let out = Tensor(shape: x.shape)
        for i in 0..<x.count {
            let x0 = min(max((Double(x[i]) - (1 - abT).squareRoot() * Double(e[i])) / abT.squareRoot(), -1), 1)
            let e2 = (Double(x[i]) - abT.squareRoot() * x0) / (1 - abT).squareRoot()
            out[i] = Float(abP.squareRoot() * x0 + (1 - abP).squareRoot() * e2)
        }
        return out
    }

    func testODEWithOneStepIsTheModelsDDIMx0Prediction() throws {
        let m = GaussianPredictor(nonlinear: true)
        let x = noise([1, 1, 8, 8], seed: 1)
        let (x0, forwards) = try DAPSODE.estimate(x, t: 600, steps: 1, model: m, schedule: schedule)
        XCTAssertEqual(forwards, 1)
        let e = try m.forward(x, timestep: 600)
        let a = schedule.alphaBar(600).squareRoot(), s = (1 - schedule.alphaBar(600)).squareRoot()
        for i in 0..<x.count {
            let want = min(max((Double(x[i]) - s * Double(e[i])) / a, -1), 1)
            XCTAssertEqual(Double(x0[i]), want, accuracy: 1e-5)
        }
    }

    func testODEWithNStepsIsNDDIMSteps() throws {
        let m = GaussianPredictor(nonlinear: true)
        let x = noise([2, 1, 8, 8], seed: 2)  // a batch of two chains
        let (x0, forwards) = try DAPSODE.estimate(x, t: 800, steps: 4, model: m, schedule: schedule)
        XCTAssertEqual(forwards, 4)
        XCTAssertEqual(DAPSSchedule.odeGrid(from: 800, steps: 4), [800, 600, 400, 200, -1])
        var z = x
        for (t, p) in [(800, 600), (600, 400), (400, 200), (200, -1)] { z = try ddim(z, from: t, to: p, model: m) }
        for i in 0..<x.count { XCTAssertEqual(x0[i], z[i], accuracy: 1e-5) }
        // below `steps` the grid has no repeated timestep
        XCTAssertEqual(DAPSSchedule.odeGrid(from: 2, steps: 5), [2, 1, 0, -1])
    }

    func testAnnealingLevelsDecreaseFromTheTopToSigmaMin() {
        let levels = DAPSSchedule.levels(count: 100, schedule: schedule)
        XCTAssertEqual(levels.first, 999)
        XCTAssertEqual(zip(levels, levels.dropFirst()).filter { $0 <= $1 }.count, 0)
        XCTAssertGreaterThan(levels.count, 90)
        XCTAssertEqual(DAPSSchedule.sigma(levels.last!, schedule), 0.1, accuracy: 0.01)
    }

    /// Gaussian toy posterior: prior N(x̂0, r²) per pixel, y = a·x + N(0, τ²). Posterior precision λ = 1/r² + a²/τ²,
    /// mean (x̂0/r² + a·y/τ²)/λ, variance 1/λ. Langevin with step δ/λ has stationary variance 1/(λ(1 − δ/2)).
    func testLangevinSamplesTheGaussianPosterior() {
        let shape = [1, 16, 16]
        let (a, r, tau, xhat, yv) = (Float(2), 0.5, 0.2, Float(0.3), Float(1.0))
        let op = ScaleOperator(a: a, shape: shape)
        let langevin = LangevinPosterior(op: op, y: Tensor(shape: shape, repeating: yv), tau: tau)
        let lambda = langevin.curvature(r: r, jacobianNormSquared: LangevinPosterior.jacobianNormSquared(op))
        XCTAssertEqual(lambda, 1 / (r * r) + Double(a * a) / (tau * tau), accuracy: 1e-3)
        let mean = (Double(xhat) / (r * r) + Double(a * yv) / (tau * tau)) / lambda
        let delta = 0.05
        let variance = 1 / (lambda * (1 - delta / 2))
        var draws: [Double] = []
        for seed in 0..<8 {
            var rng = SeededRandom(seed: UInt64(seed), stream: "langevin-test")
            // 300 steps = 15 relaxation times (1/δ): every pixel is an independent draw from the stationary law
            let x = langevin.sample(
                anchor: Tensor(shape: shape, repeating: xhat), r: r, eta: delta / lambda, steps: 300,
                noise: &rng)
            for i in 0..<x.count { draws.append(Double(x[i])) }
        }
        let m = draws.reduce(0, +) / Double(draws.count)
        let v = draws.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(draws.count - 1)
        XCTAssertEqual(m, mean, accuracy: 4 * (variance / Double(draws.count)).squareRoot())
        XCTAssertEqual(v / variance, 1, accuracy: 0.12)  // 2,048 draws: relative std error of a variance ≈ 3 %
        // and it is the posterior, not the prior (variance r² = 0.25) nor the likelihood alone
        XCTAssertLessThan(v, 0.02)
        // Without its noise term (DAPS's last level, `daps_final_mean`) the chain descends to the posterior mean.
        var rng = SeededRandom(seed: 0, stream: "langevin-mean-test")
        let descent = langevin.sample(
            anchor: Tensor(shape: shape, repeating: xhat), r: r, eta: 0.5 / lambda, steps: 100, noise: &rng, stochastic: false)
        for i in 0..<descent.count { XCTAssertEqual(Double(descent[i]), mean, accuracy: 1e-5) }
    }

    /// The exact conditional (perturb-and-MAP by CG) against the closed form on a dense operator whose AᵀA is not
    /// diagonal (8 Gaussian measurements of a 4×4 image): mean mode = P⁻¹(x̂0/r² + Aᵀy/τ²) to float rounding, and
    /// 4,000 draws have that mean and the covariance P⁻¹ (diagonal and one off-diagonal entry).
    func testExactConditionalSamplesTheGaussianPosterior() throws {
        let shape = [1, 4, 4], n = 16
        let op = try CompressedSensing(ratio: 0.5, matrixSeed: 4, imageShape: shape)
        var rng = SeededRandom(seed: 1, stream: "exact-conditional-test")
        let xhat = rng.gaussianTensor(shape: shape), y = rng.gaussianTensor(shape: op.outputShape)
        let (r, tau) = (0.4, 0.3)
        // closed form in Double: P = I/r² + AᵀA/τ², b = x̂0/r² + Aᵀy/τ²
        var pm = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            for j in 0..<n {
                var s = 0.0
                for k in 0..<op.m { s += Double(op.matrix[k * n + i]) * Double(op.matrix[k * n + j]) }
                pm[i][j] = s / (tau * tau) + (i == j ? 1 / (r * r) : 0)
            }
        }
        let aty = op.adjoint(y)
        let b = (0..<n).map { Double(xhat[$0]) / (r * r) + Double(aty[$0]) / (tau * tau) }
        let cov = Self.inverse(pm)
        let mean = (0..<n).map { i in (0..<n).reduce(0.0) { $0 + cov[i][$1] * b[$1] } }
        let sampler = GaussianConditional(op: op, y: y, tau: tau)
        let m0 = sampler.sample(anchor: xhat, r: r, iterations: n, perturb: false, noise: &rng)
        for i in 0..<n { XCTAssertEqual(Double(m0[i]), mean[i], accuracy: 1e-4 * max(1, abs(mean[i]))) }
        let draws = 4000
        var sum = [Double](repeating: 0, count: n), sq = [Double](repeating: 0, count: n), cross = 0.0
        for _ in 0..<draws {
            let x = sampler.sample(anchor: xhat, r: r, iterations: n, perturb: true, noise: &rng)
            for i in 0..<n { sum[i] += Double(x[i]); sq[i] += Double(x[i]) * Double(x[i]) }
            cross += Double(x[0]) * Double(x[5])
        }
        for i in 0..<n {
            let m = sum[i] / Double(draws), v = sq[i] / Double(draws) - m * m
            XCTAssertEqual(m, mean[i], accuracy: 5 * (cov[i][i] / Double(draws)).squareRoot(), "mean of pixel \(i)")
            XCTAssertEqual(v / cov[i][i], 1, accuracy: 0.12, "variance of pixel \(i)")  // 4,000 draws: ≈ 2 % std error
        }
        let c05 = cross / Double(draws) - (sum[0] / Double(draws)) * (sum[5] / Double(draws))
        XCTAssertEqual(c05, cov[0][5], accuracy: 0.1 * (cov[0][0] * cov[5][5]).squareRoot())
    }

    /// Gauss–Jordan inverse of a small symmetric positive definite matrix.
    static func inverse(_ a: [[Double]]) -> [[Double]] {
        let n = a.count
        var m = a.enumerated().map { i, row in row + (0..<n).map { $0 == i ? 1.0 : 0.0 } }
        for c in 0..<n {
            let p = (c..<n).max { abs(m[$0][c]) < abs(m[$1][c]) }!
            m.swapAt(c, p)
            let d = m[c][c]
            m[c] = m[c].map { $0 / d }
            for r in 0..<n where r != c {
                let f = m[r][c]
                if f != 0 { m[r] = zip(m[r], m[c]).map { $0 - f * $1 } }
            }
        }
        return m.map { Array($0[n...]) }
    }

    func testNonlinearJacobianNormByFiniteDifferences() throws {
        let hdr = try HDR(gain: 2, imageShape: [1, 8, 8])
        XCTAssertEqual(LangevinPosterior.jacobianNormSquared(hdr), 4, accuracy: 1e-2)
    }

    func problem(_ m: GaussianPredictor, op: any MeasurementOperator) -> InverseProblem {
        let truth = gaussianImage(m, seed: 3)
        let y = op.apply(truth)
        return InverseProblem(model: m, schedule: schedule, op: op, y: y, noiseSigma: 0.05)
    }

    func quick(samples: Int) -> SolverParameters {
        var p = SolverParameters(method: .daps)
        p.samples = samples; p.annealingSteps = 6; p.odeSteps = 2; p.mcmcSteps = 5; p.budget = 1000; p.seed = 7
        return p
    }

    func testBatchedChainsEqualSequentialChains() throws {
        let m = GaussianPredictor(nonlinear: true)
        let prob = problem(m, op: ScaleOperator(a: 0.8, shape: [1, 8, 8]))
        let p = quick(samples: 3)
        let batched = try DAPSSolver.solve(p, problem: prob, chains: [0, 1, 2], progress: { _ in true }, observer: nil)
        XCTAssertEqual(batched.samples.count, 3)
        XCTAssertEqual(batched.unetEvaluations, 3 * 2 * 6)
        for c in 0..<3 {
            let alone = try DAPSSolver.solve(p, problem: prob, chains: [c], progress: { _ in true }, observer: nil)
            for i in 0..<alone.x.count { XCTAssertEqual(batched.samples[c][i], alone.samples[0][i], accuracy: 1e-5) }
        }
        // the chains differ (independent streams) and the result is their mean
        XCTAssertGreaterThan(mse(batched.samples[0], batched.samples[1]), 1e-4)
        let mean = PosteriorSummary.mean(batched.samples)
        for i in 0..<mean.count { XCTAssertEqual(batched.x[i], mean[i], accuracy: 1e-6) }
    }

    func testBudgetShortensTheAnnealingAndCountsEveryChain() throws {
        let m = GaussianPredictor()
        let prob = problem(m, op: ScaleOperator(a: 1, shape: [1, 8, 8]))
        var p = quick(samples: 4)
        p.annealingSteps = 100; p.odeSteps = 5; p.budget = 400
        let res = try Solvers.run(p, problem: prob)
        XCTAssertLessThanOrEqual(res.unetEvaluations, 400)
        XCTAssertGreaterThan(res.unetEvaluations, 300)
        XCTAssertEqual(res.stoppedBy, .budget)
        XCTAssertEqual(res.unetVJPEvaluations, 0)
        XCTAssertEqual(res.samples.count, 4)
        var roomy = p
        roomy.samples = 1; roomy.budget = 2000; roomy.mcmcSteps = 1  // every level fits: not stopped by the budget
        XCTAssertEqual(try Solvers.run(roomy, problem: prob).stoppedBy, .iterations)
        p.budget = 19  // one level of 4 chains × 5 ODE steps does not fit
        XCTAssertThrowsError(try Solvers.run(p, problem: prob)) { XCTAssertEqual(($0 as? SolverError)?.code, "budget.exceeded") }
    }

    func testSamplesRefusedForOptimisersAndDPSCountsItsVJPs() throws {
        let m = GaussianPredictor()
        let prob = problem(m, op: ScaleOperator(a: 1, shape: [1, 8, 8]))
        for method in [SolverMethod.dmilo, .dmiloPGD, .dmplug, .baseline] {
            var p = SolverParameters(method: method)
            p.samples = 2
            XCTAssertThrowsError(try Solvers.run(p, problem: prob, makeReplica: { m })) {
                XCTAssertEqual(($0 as? SolverError)?.code, "solver.invalid")
            }
        }
        var p = SolverParameters(method: .dps)
        p.dpsSteps = 10; p.samples = 2; p.budget = 20
        let res = try Solvers.run(p, problem: prob)
        XCTAssertEqual(res.samples.count, 2)
        XCTAssertEqual(res.unetEvaluations, 20)
        XCTAssertEqual(res.unetVJPEvaluations, 20)
        XCTAssertGreaterThan(mse(res.samples[0], res.samples[1]), 1e-6)
    }

    /// The sampler recovers a Gaussian-prior image better than its prior mean does: an end-to-end sanity check
    /// that the levels, ODE and Langevin steps fit together (the model is exact for this prior).
    func testDAPSReconstructsBetterThanThePriorMean() throws {
        let m = GaussianPredictor(mu: 0.2, s: 0.5)
        let truth = gaussianImage(m, seed: 11)
        let op = ScaleOperator(a: 1, shape: [1, 8, 8])
        let y = op.apply(truth)
        var r = SeededRandom(seed: 5, stream: "y-noise")
        for i in 0..<y.count { y[i] += Float(r.gaussian() * 0.05) }
        let prob = InverseProblem(model: m, schedule: schedule, op: op, y: y, noiseSigma: 0.05)
        var p = quick(samples: 4)
        p.annealingSteps = 20; p.odeSteps = 2; p.mcmcSteps = 30
        let res = try Solvers.run(p, problem: prob)
        let prior = Tensor(shape: truth.shape, repeating: 0.2)
        XCTAssertLessThan(mse(res.x, truth), 0.1 * mse(prior, truth))
        let sd = PosteriorSummary.standardDeviation(res.samples)
        XCTAssertGreaterThan(PosteriorSummary.meanValue(sd), 0.005)
        XCTAssertLessThan(PosteriorSummary.meanValue(sd), 0.2)
    }
}
