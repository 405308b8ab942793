import DMiloFormats
import DMiloModel
import DMiloSolvers
import Foundation
import XCTest

@testable import DMiloJobs

/// `solver.samples` / `keep_samples` through the one settings → parameters mapping (docs/INTERFACE.md `solver`).
final class SamplesSettingsTests: XCTestCase {
    func settings(_ json: String) throws -> SolverSettings {
        try SolverSettings.parse(JSONValue.parse(Data(json.utf8)), file: "job.json")
    }

    func testPlainDAPSWithEightSamplesFitsTheDefaultCap() throws {
        let p = try settings(#"{"method": "daps", "samples": 8}"#).parameters(operatorType: "inpainting", maxBudget: 2000, seed: 1)
        XCTAssertEqual(p.method, .daps)
        XCTAssertEqual(p.samples, 8)
        let levels = try DAPSSolver.plan(p, chains: 8, schedule: NoiseSchedule())
        let forwards = levels.map { DAPSSchedule.odeGrid(from: $0, steps: p.odeSteps).count - 1 }.reduce(0, +)
        XCTAssertLessThanOrEqual(8 * forwards, 2000)
        XCTAssertGreaterThanOrEqual(forwards, 240)  // ≈ 250 forwards per chain
        let one = try settings(#"{"method": "daps"}"#).parameters(operatorType: "inpainting", maxBudget: 2000, seed: 1)
        XCTAssertEqual(one.samples, 1)
        XCTAssertEqual(try DAPSSolver.plan(one, chains: 1, schedule: NoiseSchedule()).count, 100)  // 500 forwards
    }

    func testSamplesRefusedForOptimisersNamingTheField() throws {
        for method in ["dmilo", "dmilo-pgd", "dmplug", "baseline"] {
            XCTAssertThrowsError(
                try settings(#"{"method": "\#(method)", "samples": 2}"#)
                    .parameters(operatorType: "inpainting", maxBudget: 2000, seed: 1)
            ) { e in
                XCTAssertEqual((e as? JobError)?.code, "manifest.invalid")
                XCTAssertEqual((e as? JobError)?.field, "solver.samples")
            }
            // one sample is every method's default and stays accepted
            XCTAssertNoThrow(
                try settings(#"{"method": "\#(method)", "samples": 1}"#)
                    .parameters(operatorType: "inpainting", maxBudget: 2000, seed: 1))
        }
        XCTAssertEqual(
            try settings(#"{"method": "dps", "samples": 4}"#)
                .parameters(operatorType: "inpainting", maxBudget: 2000, seed: 1).samples, 4)
    }

    func testKeepSamplesMustBeABooleanAndSamplesPositive() throws {
        XCTAssertEqual(try settings(#"{"method": "daps", "keep_samples": true}"#).keepSamples, true)
        for bad in [#"{"keep_samples": 1}"#, #"{"samples": 0}"#, #"{"samples": 2.5}"#, #"{"annealing_steps": 3}"#] {
            XCTAssertThrowsError(try settings(bad)) { XCTAssertEqual(($0 as? JobError)?.code, "manifest.invalid") }
        }
        // the DAPS knobs are tuning keys (benchmark --overrides), not manifest keys
        let tuned = try SolverSettings.parse(
            JSONValue.parse(Data(#"{"annealing_steps": 3, "mcmc_step": 0.5}"#.utf8)), file: "x",
            allowed: SolverSettings.tuningKeys)
        XCTAssertEqual(tuned.annealingSteps, 3)
        XCTAssertEqual(tuned.mcmcStep, 0.5)
    }
}
