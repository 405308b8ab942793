import DMiloKernels
import DMiloModel
import DMiloOperators
import XCTest

@testable import DMiloSolvers

/// DMILO-PGD's data step (docs/algorithms.md §4 step 1) and the ILO methods' early stop, checked against what the
/// math says they must do: the official squared step, the optimality conditions of box-constrained least squares,
/// the noise-level stop, and the stop rules' bookkeeping.
final class PGDDataStepTests: XCTestCase {
    func boxImage(seed: UInt64, count: Int, spread: Float = 0.6) -> Tensor {
        var r = SeededRandom(seed: seed, stream: "pgd-test")
        let x = Tensor(shape: [1, 4, count / 4])
        for i in 0..<count { x[i] = Float(r.gaussian()) * spread }
        return x
    }

    /// Where AAᵀ = c·I (an inpainting mask, c = 1) the first FISTA iteration is the official squared step
    /// X − lr·∇‖A X − y‖² with lr = 0.5/‖A‖²; it then fits y exactly on the observed pixels.
    func testFirstIterationIsTheOfficialSquaredStep() throws {
        let op = try Inpainting(missingFraction: 0.5, maskSeed: 2, imageShape: [1, 4, 4])
        let y = op.apply(boxImage(seed: 1, count: 16, spread: 0.3))  // inside the box: the clamp does not bind
        let start = boxImage(seed: 2, count: 16, spread: 0.3)
        var official = start.copy(), fista = start.copy()
        let problem = InverseProblem(model: GaussianPredictor(), schedule: GaussianPredictor().schedule, op: op, y: y, noiseSigma: 0)
        DMILOPGDSolver.dataStep(&official, problem: problem, form: .squared, steps: 1, lr: 0.5)
        DMILOPGDSolver.boxFISTA(&fista, op: op, y: y, lipschitz: 2, iterations: 1, tolerance: 0)
        for i in 0..<16 { XCTAssertEqual(fista[i], official[i], accuracy: 1e-6) }
        let r = op.apply(fista); r.axpy(-1, y)
        XCTAssertLessThan(r.norm, 1e-5)
    }

    /// On a dense Gaussian matrix FISTA reaches the box-constrained least-squares minimiser: the KKT conditions hold
    /// (gradient ≈ 0 inside the box, pointing outwards where a bound is active), with bounds active by construction.
    func testFISTAMeetsTheBoxConstrainedOptimalityConditions() throws {
        let op = try CompressedSensing(ratio: 1.0, matrixSeed: 3, imageShape: [1, 4, 4])
        let truth = boxImage(seed: 4, count: 16, spread: 1.2)  // some pixels beyond ±1: their bounds become active
        let y = op.apply(truth)
        let norm = try OperatorNorm.estimate(op)
        var x = Tensor(shape: [1, 4, 4])
        DMILOPGDSolver.boxFISTA(&x, op: op, y: y, lipschitz: 2 * norm * norm * 1.01, iterations: 20_000, tolerance: 0)
        let r = op.apply(x); r.axpy(-1, y); r.scale(by: 2)
        let g = op.vjp(at: x, cotangent: r)
        var active = 0
        for i in 0..<16 {
            XCTAssertLessThanOrEqual(abs(x[i]), 1)
            if x[i] <= -1 + 1e-6 {
                active += 1; XCTAssertGreaterThan(g[i], -1e-3, "pixel \(i) at −1")
            } else if x[i] >= 1 - 1e-6 {
                active += 1; XCTAssertLessThan(g[i], 1e-3, "pixel \(i) at +1")
            } else {
                XCTAssertEqual(g[i], 0, accuracy: 1e-3, "interior pixel \(i)")
            }
        }
        XCTAssertGreaterThan(active, 0)
    }

    /// The discrepancy stop: FISTA stops once ‖A X − y‖ ≤ tolerance, and leaves an X that already meets it alone.
    func testFISTAStopsAtTheNoiseLevel() throws {
        let op = try CompressedSensing(ratio: 0.5, matrixSeed: 5, imageShape: [1, 4, 4])
        let y = op.apply(boxImage(seed: 6, count: 16))
        let start = Tensor(shape: [1, 4, 4])
        let r0 = op.apply(start); r0.axpy(-1, y)
        let norm = try OperatorNorm.estimate(op)
        var x = start.copy()
        let tol = 0.2 * r0.norm
        DMILOPGDSolver.boxFISTA(&x, op: op, y: y, lipschitz: 2 * norm * norm, iterations: 500, tolerance: tol)
        let r = op.apply(x); r.axpy(-1, y)
        XCTAssertLessThanOrEqual(r.norm, tol)
        XCTAssertGreaterThan(r.norm, 0.05 * tol, "stopped at the tolerance, not run to convergence")
        var same = start.copy()
        DMILOPGDSolver.boxFISTA(&same, op: op, y: y, lipschitz: 2 * norm * norm, iterations: 500, tolerance: 2 * r0.norm)
        for i in 0..<16 { XCTAssertEqual(same[i], start[i]) }
    }

    func csProblem(sigma: Double) throws -> InverseProblem {
        let m = GaussianPredictor()
        let op = try CompressedSensing(ratio: 0.5, matrixSeed: 7, imageShape: [1, 8, 8])
        let y = op.apply(gaussianImage(m, seed: 8))
        var r = SeededRandom(seed: 9, stream: "noise")
        for i in 0..<y.count { y[i] += Float(r.gaussian() * sigma) }
        return InverseProblem(model: m, schedule: m.schedule, op: op, y: y, noiseSigma: sigma)
    }

    /// The final data step returns exactly the data step applied to the last projection, at no UNet cost.
    func testFinalDataStepIsTheDataStepOfTheLastProjection() throws {
        let prob = try csProblem(sigma: 0.01)
        var p = SolverDefaults.parameters(method: .dmiloPGD, operatorType: "compressed_sensing")
        XCTAssertEqual(p.pgdForm, .accelerated)
        p.outer = 2; p.inner = 10; p.plateau = nil; p.discrepancyTau = nil
        p.pgdFinalDataStep = false
        let bare = try Solvers.run(p, problem: prob)
        p.pgdFinalDataStep = true
        let stepped = try Solvers.run(p, problem: prob)
        XCTAssertEqual(stepped.unetEvaluations, bare.unetEvaluations)
        var expected = bare.x.copy()
        let lr = try DMILOPGDSolver.stepSize(p, op: prob.op)
        DMILOPGDSolver.dataStep(&expected, problem: prob, form: p.pgdForm, steps: p.pgdSteps, lr: lr)
        for i in 0..<expected.count { XCTAssertEqual(stepped.x[i], expected[i], accuracy: 1e-6) }
        XCTAssertLessThan(prob.residualNorm(stepped.x), prob.residualNorm(bare.x))
    }

    /// The residual plateau stops a noisy job once its sweeps stop buying data fit, and never a noise-free one.
    func testPlateauStopsOnlyNoisyJobs() throws {
        var p = SolverDefaults.parameters(method: .dmilo, operatorType: "compressed_sensing")
        p.outer = 6; p.inner = 10; p.discrepancyTau = nil
        p.plateau = 0.9  // any sweep that does not cut the residual by 90 % ends the job
        let noisy = try Solvers.run(p, problem: try csProblem(sigma: 0.01))
        XCTAssertEqual(noisy.stoppedBy, .plateau)
        XCTAssertLessThan(noisy.outerIterations, 6)
        let clean = try Solvers.run(p, problem: try csProblem(sigma: 0))
        XCTAssertEqual(clean.stoppedBy, .iterations)
        XCTAssertEqual(clean.outerIterations, 6)
    }

    /// The discrepancy rule is checked at every inner step of the image-side layer: with a bound every image meets,
    /// the job ends inside the first sweep, before the other layers and the re-simulation cost anything.
    func testDiscrepancyStopsInsideTheSweep() throws {
        let prob = try csProblem(sigma: 0.05)
        var p = SolverDefaults.parameters(method: .dmilo, operatorType: "compressed_sensing")
        p.outer = 3; p.inner = 10; p.plateau = nil
        p.discrepancyTau = 1e6
        let early = try Solvers.run(p, problem: prob)
        XCTAssertEqual(early.stoppedBy, .discrepancy)
        // the initial forward pass (N) plus one inner step of the image-side layer (1)
        XCTAssertEqual(early.unetEvaluations, p.steps + 1)
        XCTAssertLessThanOrEqual(prob.residualNorm(early.x), 1e6 * 0.05 * Double(prob.y.count).squareRoot())
    }
}
