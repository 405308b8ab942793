import DMiloOperators
import DMiloSolvers
import Foundation
import XCTest

@testable import DMiloJobs

/// One reader for the whole manifest: what the validator sees is what the job runs.
final class StrictManifestTests: XCTestCase {
    func parse(_ text: String) throws -> Manifest { try Manifest.parse(Data(text.utf8), file: "job.json") }

    func expectInvalid(_ text: String, _ words: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { e in
            let j = e as? JobError
            XCTAssertEqual(j?.code, JobError.manifestInvalid, "\(e)", file: file, line: line)
            XCTAssertTrue("\(j?.message ?? "")".contains(words), "\(e)", file: file, line: line)
        }
    }

    /// The issue's regression: two readers disagreed on which `operator` counts (validated denoise, ran bogus).
    func testDuplicateOperatorIsRefused() {
        expectInvalid(
            #"{"version": 1, "measurement": "y.npy", "operator":{"type":"denoise"},"operator":{"type":"bogus"}}"#,
            "line 1, column 70: duplicate key \"operator\"")
        expectInvalid(
            #"{"version": 1, "measurement": "y.npy", "operator": {"type": "hdr", "gain": 2, "gain": 3}}"#,
            "duplicate key \"gain\"")
    }

    func testTrailingCommasCommentsAndNonUTF8AreRefused() {
        expectInvalid(
            "{\"version\": 1,\n \"measurement\": \"y.npy\",\n \"operator\": {\"type\": \"denoise\"},\n}",
            "line 4, column 1: trailing comma")
        expectInvalid(
            "{\"version\": 1, // v1\n \"measurement\": \"y.npy\", \"operator\": {\"type\": \"denoise\"}}",
            "line 1, column 16: comments")
        XCTAssertThrowsError(
            try Manifest.parse(
                Data(#"{"version": 1, "measurement": "y"#.utf8) + Data([0xFF])
                    + Data(#".npy", "operator": {"type": "denoise"}}"#.utf8), file: "job.json")
        ) { e in
            XCTAssertEqual((e as? JobError)?.code, JobError.manifestInvalid)
            XCTAssertTrue("\((e as? JobError)?.message ?? "")".contains("not UTF-8"), "\(e)")
        }
    }

    /// A refused manifest's files still travel with it to failed/: the salvage read tolerates what the reader refuses.
    func testRefusedManifestsStillNameTheirFiles() {
        let text = "{\"version\": 1, // v1\n \"measurement\": \"y.npy\", \"truth\": \"a.png\", \"truth\": \"t.png\",\n" + " \"operator\": {\"type\": \"inpainting\", \"mask\": \"m.png\", /* c */},}"
        XCTAssertThrowsError(try parse(text))
        XCTAssertEqual(Set(Manifest.bestEffortJobFiles(Data(text.utf8))), ["y.npy", "t.png", "m.png"])
        XCTAssertEqual(Manifest.bestEffortJobFiles(Data("not json".utf8)), [])
    }

    /// The operator object reaches the operator layer from the same parse, with seeds exact to 2⁶⁴ − 1.
    func testOperatorComesFromTheOneParse() throws {
        let m = try parse(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "missing_fraction": 0.5, "mask_seed": 18446744073709551615}}"#)
        XCTAssertEqual(try OperatorSpec(json: .object(m.operatorObject)), .inpainting(.random(missingFraction: 0.5, seed: .max)))
        XCTAssertEqual(try OperatorSpec(json: m.operatorJSONObject), .inpainting(.random(missingFraction: 0.5, seed: .max)))
    }

    func testEveryOperatorKindIsAManifestType() {
        XCTAssertEqual(Manifest.operatorTypes, Set(OperatorKind.allCases.map(\.rawValue)))
    }

    func params(_ solver: String, _ op: String = "denoise", maxBudget: Int = 2000) throws -> SolverParameters {
        let m = try parse(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "denoise"}, "seed": 5, "solver": \#(solver)}"#)
        return try XCTUnwrap(m.solver).parameters(operatorType: op, maxBudget: maxBudget, seed: m.seed)
    }

    func testLrAndLrZAreOneKnob() throws {
        XCTAssertEqual(try params(#"{"method": "dmilo", "lr": 0.03}"#).lrZ, 0.03)
        XCTAssertEqual(try params(#"{"method": "dmilo", "lr_z": 0.04}"#).lrZ, 0.04)
        XCTAssertEqual(try params(#"{"method": "dmilo", "lr": 0.03, "lr_z": 0.04}"#).lrZ, 0.04)
        // manifest over config, whichever spelling each uses
        var config = SolverSettings()
        config.lrZ = 0.5
        let manifest = try SolverSettings.parse(JSONValue.parse(Data(#"{"lr": 0.03}"#.utf8)), file: "job.json")
        XCTAssertEqual(config.overridden(by: manifest).lrZ, 0.03)
    }

    func testDPSStepsHaveTheirOwnFieldAndOldManifestsKeepTheirMeaning() throws {
        let defaults = SolverDefaults.parameters(method: .dps, operatorType: "denoise").dpsSteps
        XCTAssertEqual(try params(#"{"method": "dps", "dps_steps": 40}"#).dpsSteps, 40)
        XCTAssertEqual(try params(#"{"method": "dps", "inner": 30}"#).dpsSteps, 30, "pre-dps_steps manifests")
        XCTAssertEqual(try params(#"{"method": "dps", "inner": 30, "dps_steps": 40}"#).dpsSteps, 40)
        let dmilo = try params(#"{"method": "dmilo", "inner": 30}"#)
        XCTAssertEqual(dmilo.inner, 30)
        XCTAssertEqual(dmilo.dpsSteps, SolverDefaults.parameters(method: .dmilo, operatorType: "denoise").dpsSteps)
        XCTAssertEqual(try params(#"{"method": "dps"}"#).dpsSteps, defaults)
    }

    func testBudgetCappedAndSeedFromTheManifest() throws {
        XCTAssertEqual(try params(#"{"budget": 5000}"#, maxBudget: 300).budget, 300)
        XCTAssertEqual(try params(#"{"budget": 50}"#, maxBudget: 300).budget, 50)
        XCTAssertEqual(try params(#"{}"#, maxBudget: 300).budget, 300)
        XCTAssertEqual(try params(#"{}"#).seed, 5)
    }

    func testTuningKeysOnlyForTheBenchmark() throws {
        XCTAssertThrowsError(try params(#"{"z_prior": 0.1}"#)) { e in XCTAssertEqual((e as? JobError)?.field, "solver.z_prior") }
        let s = try SolverSettings.parse(
            JSONValue.parse(Data(#"{"z_prior": 0.2, "pgd_steps": 7, "layer_span": 2}"#.utf8)),
            file: "--overrides", allowed: SolverSettings.tuningKeys)
        let p = try s.parameters(operatorType: "inpainting", maxBudget: 100, seed: 0)
        XCTAssertEqual(p.zPrior, 0.2); XCTAssertEqual(p.pgdSteps, 7); XCTAssertEqual(p.layerSpan, 2)
    }
}
