import DMiloKernels
import DMiloModel
import XCTest

@testable import DMiloSolvers

final class DDIMStepTests: XCTestCase {
    func testGridsMatchTheOfficialCode() {
        XCTAssertEqual(DDIMGrid.dmplug(steps: 3), [666, 333, 0])
        XCTAssertEqual(DDIMGrid.dmilo(steps: 3), [999, 666, 333])
        XCTAssertEqual(DDIMGrid.dmilo(steps: 4), [999, 750, 500, 250])
        XCTAssertEqual(DDIMGrid.dmplug(steps: 1), [0])
        XCTAssertEqual(DDIMGrid.dmilo(steps: 1), [999])
    }

    func testScheduleValuesOfAlgorithmsNote() {
        let s = NoiseSchedule()
        XCTAssertEqual(s.alphaBar(999), 4.036e-5, accuracy: 2e-8)
        XCTAssertEqual(s.alphaBar(666), 0.010984, accuracy: 2e-6)
        XCTAssertEqual(s.alphaBar(333), 0.318625, accuracy: 2e-6)
        XCTAssertEqual(s.alphaBar(0), 0.9999, accuracy: 1e-7)
        XCTAssertEqual(s.alphaBar(-1), 1)
    }

    /// The step with ε_θ replaced by the exact Gaussian ε: g(x) computed by hand for one pixel.
    func testStepFormula() throws {
        let m = GaussianPredictor(h: 2, w: 2)
        let step = DDIMStep(t: 666, delta: 333, schedule: m.schedule)
        let x = Tensor(shape: [1, 2, 2], values: [0.3, -0.5, 1.5, 0.0])
        let (out, _) = try step.apply(x, model: m, keep: false)
        let e = try m.forward(x.copy().reshape([1, 1, 2, 2]), timestep: 666)
        for i in 0..<4 {
            let at = Float(m.schedule.alphaBar(666).squareRoot()), st = Float((1 - m.schedule.alphaBar(666)).squareRoot())
            let ap = Float(m.schedule.alphaBar(333).squareRoot()), sp = Float((1 - m.schedule.alphaBar(333)).squareRoot())
            let x0 = min(max((x[i] - st * e[i]) / at, -1), 1)
            let e2 = (x[i] - at * x0) / st
            XCTAssertEqual(out[i], ap * x0 + sp * e2, accuracy: 1e-5)
        }
        // Last DMPlug step (p < 0) returns the clipped x0 exactly.
        let last = DDIMStep(t: 0, delta: 333, schedule: m.schedule)
        let (x0, _) = try last.apply(x, model: m, keep: false)
        for i in 0..<4 { XCTAssertLessThanOrEqual(abs(x0[i]), 1) }
    }

    /// VJP through one step and through a 3-step span vs central finite differences (Float64 accumulation of ⟨c, Δ⟩).
    func testStepAndSpanVJPAgainstFiniteDifferences() throws {
        let m = GaussianPredictor(h: 4, w: 4, nonlinear: true)
        let replicas: [any NoisePredictor] = [m, m, m]  // the test double keeps no state between tapes
        let chain = DDIMStep.chain(grid: DDIMGrid.dmilo(steps: 3), trainSteps: 1000, schedule: m.schedule)
        var r = SeededRandom(seed: 3)
        // Small latents so no x0 sits on a clip boundary (the function is smooth there).
        let x = Tensor(shape: [1, 4, 4]); for i in 0..<x.count { x[i] = Float(r.gaussian()) * 0.3 }
        let c = Tensor(shape: [1, 4, 4]); for i in 0..<c.count { c[i] = Float(r.gaussian()) }
        for span in [DDIMSpan(steps: [chain[2]]), DDIMSpan(steps: chain)] {
            let counter = EvaluationCounter(budget: .max)
            let (_, saved) = try span.forwardWithTapes(x, model: m, counter: counter, replicas: replicas)
            let g = try span.vjp(c, saved: saved, replicas: replicas)
            let h: Float = 1e-2
            for i in 0..<x.count {
                let xp = x.copy(); xp[i] += h
                let xm = x.copy(); xm[i] -= h
                let fp = try span.forward(xp, model: m, counter: counter).dot(c)
                let fm = try span.forward(xm, model: m, counter: counter).dot(c)
                let fd = (fp - fm) / Double(2 * h)
                XCTAssertEqual(Double(g[i]), fd, accuracy: 2e-2 * max(1, abs(fd)), "span \(span.steps.count), pixel \(i)")
            }
        }
    }

    /// Where x0 clips, only the direct path (s_p/s_t) carries gradient.
    func testClipKillsTheModelPath() throws {
        let m = GaussianPredictor(h: 1, w: 1)
        let step = DDIMStep(t: 333, delta: 333, schedule: m.schedule)
        let x = Tensor(shape: [1, 1, 1], values: [30.0])  // far outside: the posterior-mean x0 (≈ 5.6) clips to 1
        let (_, saved) = try step.apply(x, model: m, keep: true)
        let g = try step.vjp(Tensor(shape: [1, 1, 1], values: [1]), saved: saved!, model: m)
        XCTAssertEqual(g[0], step.sP / step.sT, accuracy: 1e-6)
    }
}
