import DMiloKernels
import DMiloModel
import DMiloOperators
import XCTest

@testable import DMiloSolvers

/// The problem's ``EvaluationMonitor`` sees every UNet evaluation of every method (the counter all of them go
/// through) and can stop a solver between two evaluations; progress reports carry the inner iteration and residual.
final class EvaluationMonitorTests: XCTestCase {
    final class Recorder: EvaluationMonitor {
        var totals: [Int] = []
        var stopAfter: Int?
        struct Stop: Error {}
        func evaluated(total: Int, budget: Int) throws {
            totals.append(total)
            if let s = stopAfter, total >= s { throw Stop() }
        }
    }

    func setUp(_ method: SolverMethod) throws -> (GaussianPredictor, InverseProblem, SolverParameters, Recorder) {
        let m = GaussianPredictor()
        let op = try Inpainting(missingFraction: 0.5, maskSeed: 4, imageShape: [1, 8, 8])
        let truth = gaussianImage(m, seed: 1)
        let recorder = Recorder()
        let prob = InverseProblem(
            model: m, schedule: m.schedule, op: op, y: op.apply(truth), noiseSigma: 0.01,
            monitor: recorder)
        var p = SolverDefaults.parameters(method: method, operatorType: "inpainting")
        p.outer = 3; p.inner = 20; p.dpsSteps = 40; p.budget = 500
        return (m, prob, p, recorder)
    }

    func testEveryMethodReportsEachEvaluationInOrder() throws {
        for method in [SolverMethod.dmiloPGD, .dmilo, .dmplug, .dps] {
            let (m, prob, p, recorder) = try setUp(method)
            var reports: [SolverProgress] = []
            let res = try Solvers.run(
                p, problem: prob, makeReplica: { m },
                progress: {
                    reports.append($0); return true
                })
            XCTAssertGreaterThan(res.unetEvaluations, 0, "\(method)")
            XCTAssertEqual(recorder.totals, Array(1...res.unetEvaluations), "\(method): one call per evaluation, in order")
            XCTAssertEqual(m.forwards, res.unetEvaluations, "\(method): the counter counts the model's forward passes")
            XCTAssertTrue(reports.contains { $0.inner > 0 }, "\(method)")
            XCTAssertNotNil(reports.last?.residual, "\(method): the latest residual travels with the progress")
        }
    }

    func testAThrowingMonitorStopsTheSolverAtOnce() throws {
        for method in [SolverMethod.dmiloPGD, .dmplug, .dps] {
            let (m, prob, p, recorder) = try setUp(method)
            recorder.stopAfter = 7
            XCTAssertThrowsError(try Solvers.run(p, problem: prob, makeReplica: { m })) { XCTAssertTrue($0 is Recorder.Stop, "\(method)") }
            XCTAssertEqual(recorder.totals.last, 7, "\(method)")
            XCTAssertEqual(m.forwards, 7, "\(method): no UNet evaluation after the stop")
        }
    }
}
