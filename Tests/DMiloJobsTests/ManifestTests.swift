import DMiloSolvers
import Foundation
import XCTest

@testable import DMiloJobs

final class ManifestTests: XCTestCase {
    func parse(_ text: String) throws -> Manifest { try Manifest.parse(Data(text.utf8), file: "job.json") }

    func expectError(_ text: String, code: String = "manifest.invalid", field: String?, line: UInt = #line) {
        do {
            _ = try parse(text)
            XCTFail("accepted: \(text)", line: line)
        } catch let e as JobError {
            XCTAssertEqual(e.code, code, "\(text): \(e)", line: line)
            XCTAssertEqual(e.field, field, "\(text): \(e)", line: line)
            XCTAssertTrue(e.message.contains("job.json"), "message must name the file: \(e.message)", line: line)
        } catch {
            XCTFail("unexpected \(error)", line: line)
        }
    }

    func testInterfaceExampleParses() throws {
        let m = try parse(
            """
            {"version": 1, "measurement": "frame-17.npy", "operator": {"type": "super_resolution", "factor": 4},
             "noise_sigma": 0.01, "solver": {"method": "dmilo-pgd"}, "truth": "frame-17-truth.png", "seed": 123}
            """)
        XCTAssertEqual(m.version, 1)
        XCTAssertEqual(m.measurement, .job("frame-17.npy"))
        XCTAssertEqual(m.operatorType, "super_resolution")
        XCTAssertEqual(m.operatorObject["factor"], .number(4))
        XCTAssertEqual(m.noiseSigma, 0.01)
        XCTAssertEqual(m.solver?.method, "dmilo-pgd")
        XCTAssertEqual(m.truth, .job("frame-17-truth.png"))
        XCTAssertEqual(m.seed, 123)
        XCTAssertEqual(m.fileReferences.map(\.ref.description), ["frame-17.npy", "frame-17-truth.png"])
    }

    func testDefaultsAndOperatorFiles() throws {
        let m = try parse(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "compressed_sensing", "matrix": "calibration/A.npy"}}"#)
        XCTAssertEqual(m.seed, 0)
        XCTAssertEqual(m.noiseSigma, 0)
        XCTAssertNil(m.solver)
        XCTAssertEqual(m.fileReferences.map(\.field), ["measurement", "operator.matrix"])
        XCTAssertEqual(m.fileReferences[1].ref, .calibration("A.npy"))
        // SR `kernel` names a kernel shape, not a file.
        let sr = try parse(#"{"version": 1, "measurement": "y.png", "operator": {"type": "super_resolution", "factor": 2, "kernel": "box"}}"#)
        XCTAssertEqual(sr.fileReferences.count, 1)
        let blur = try parse(#"{"version": 1, "measurement": "y.png", "operator": {"type": "blur", "kernel": "k.npy"}}"#)
        XCTAssertEqual(blur.fileReferences.map(\.ref), [.job("y.png"), .job("k.npy")])
    }

    func testSolverSettingsAllKeysAndTypes() throws {
        let m = try parse(
            #"{"version": 1, "measurement": "y.npy", "operator": {"type": "denoise"}, "solver": {"method": "dps", "steps": 10, "outer": 2, "inner": 3, "lr": 0.1, "lr_z": 0.01, "lr_nu": 0.001, "lr_x": 0.5, "lambda": 0.1, "eta": 0, "budget": 100, "discrepancy_tau": 1.2}, "image_shape": [3, 32, 32]}"#
        )
        let s = try XCTUnwrap(m.solver)
        XCTAssertEqual(s.discrepancyTau, 1.2)
        XCTAssertEqual(s.steps, 10); XCTAssertEqual(s.outer, 2); XCTAssertEqual(s.inner, 3); XCTAssertEqual(s.budget, 100)
        XCTAssertEqual(s.lrZ, 0.01); XCTAssertEqual(s.lrNu, 0.001); XCTAssertEqual(s.lrX, 0.5); XCTAssertEqual(s.lambda, 0.1)
        XCTAssertEqual(m.imageShape, [3, 32, 32])
        // The runner turns the manifest's settings into solver parameters (discrepancy rule on, budget capped).
        var settings = JobSettings()
        settings.solver = s
        settings.maxBudget = 60
        let job = ClaimedJob(
            name: "j", manifest: m, jobDirectory: URL(fileURLWithPath: "/tmp"),
            calibrationDirectory: URL(fileURLWithPath: "/tmp"), settings: settings)
        let p = try ReconstructionRunner.parameters(for: job, operatorType: "denoise")
        XCTAssertEqual(p.discrepancyTau, 1.2)
        XCTAssertEqual(p.budget, 60)
        // Without solver keys the default early stop is on (it acts only when noise_sigma > 0); early_stop false
        // turns it off, and a job naming its budget but not `outer` gets the sweeps that budget pays for.
        func defaults(_ solver: String) throws -> SolverParameters {
            let manifest = try parse(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "denoise"}\#(solver)}"#)
            var settings = JobSettings()  // max_budget 1000
            settings.solver = manifest.solver ?? SolverSettings()
            return try ReconstructionRunner.parameters(
                for: ClaimedJob(
                    name: "j", manifest: manifest, jobDirectory: URL(fileURLWithPath: "/tmp"),
                    calibrationDirectory: URL(fileURLWithPath: "/tmp"), settings: settings), operatorType: "denoise")
        }
        let plain = try defaults("")
        XCTAssertEqual(plain.discrepancyTau, 1.0)
        XCTAssertEqual(plain.plateau, 0.02)
        let off = try defaults(#", "solver": {"early_stop": false}"#)
        XCTAssertNil(off.discrepancyTau)
        XCTAssertNil(off.plateau)
        XCTAssertEqual(try defaults(#", "solver": {"early_stop": false, "plateau": 0.1}"#).plateau, 0.1)
        let big = try defaults(#", "solver": {"method": "dmilo", "budget": 900}"#)
        XCTAssertEqual(big.outer, (900 - 3) / (3 * 40 + 3))  // 7 sweeps
        XCTAssertEqual(try defaults(#", "solver": {"method": "dmilo", "budget": 900, "outer": 2}"#).outer, 2)
        XCTAssertEqual(try defaults(#", "solver": {"method": "dmilo", "budget": 200}"#).outer, 4)
        XCTAssertThrowsError(try defaults(#", "solver": {"plateau": 1.5}"#)) { e in
            XCTAssertEqual((e as? JobError)?.field, "solver.plateau")
        }
        // the official DMILO-PGD variant from a manifest: its data-step form and the bare projection
        let official = try defaults(#", "solver": {"method": "dmilo-pgd", "pgd_form": "squared", "pgd_final_data_step": false}"#)
        XCTAssertEqual(official.pgdForm, .squared)
        XCTAssertFalse(official.pgdFinalDataStep)
        XCTAssertThrowsError(try defaults(#", "solver": {"pgd_form": "fast"}"#)) { e in
            XCTAssertEqual((e as? JobError)?.field, "solver.pgd_form")
        }
    }

    /// `"preset": "paper"` starts from the official per-task values; the manifest's own keys still win.
    func testPaperPreset() throws {
        func params(_ solver: String, _ op: String) throws -> SolverParameters {
            let m = try parse(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "denoise"}, "solver": \#(solver)}"#)
            var settings = JobSettings()
            settings.solver = try XCTUnwrap(m.solver)
            settings.maxBudget = 20_000
            let job = ClaimedJob(
                name: "j", manifest: m, jobDirectory: URL(fileURLWithPath: "/tmp"),
                calibrationDirectory: URL(fileURLWithPath: "/tmp"), settings: settings)
            return try ReconstructionRunner.parameters(for: job, operatorType: op)
        }
        let inp = try params(#"{"method": "dmilo-pgd", "preset": "paper"}"#, "inpainting")
        XCTAssertEqual(inp.outer, 5); XCTAssertEqual(inp.inner, 200); XCTAssertEqual(inp.lrX, 0.5); XCTAssertEqual(inp.lrZ, 2e-2)
        let sr = try params(#"{"method": "dmilo-pgd", "preset": "paper", "inner": 7}"#, "super_resolution")
        XCTAssertEqual(sr.outer, 10); XCTAssertEqual(sr.inner, 7); XCTAssertEqual(sr.lrZ, 1e-2)
        let deblur = try params(#"{"method": "dmilo-pgd", "preset": "paper"}"#, "gaussian_blur")
        XCTAssertEqual(deblur.pgdForm, .unsquared); XCTAssertEqual(deblur.pgdSteps, 1000); XCTAssertEqual(deblur.lrX, 2)
        XCTAssertEqual(try params(#"{"method": "dmplug", "preset": "paper"}"#, "inpainting").inner, 5000)
        XCTAssertThrowsError(try params(#"{"method": "dmilo", "preset": "paper"}"#, "compressed_sensing")) { e in
            XCTAssertEqual((e as? JobError)?.field, "solver.preset")
        }
        expectError(
            #"{"version": 1, "measurement": "y.npy", "operator": {"type": "denoise"}, "solver": {"preset": "fast"}}"#,
            field: "solver.preset")
    }

    func testStrictRejections() {
        let ok = #""measurement": "y.npy", "operator": {"type": "denoise"}"#
        expectError("not json", field: nil)
        expectError("[]", field: nil)
        expectError(#"{"version": 1, \#(ok), "colour": 1}"#, field: "colour")
        expectError(#"{"measurement": "y.npy", "operator": {"type": "denoise"}}"#, field: "version")
        expectError(#"{"version": 1, "operator": {"type": "denoise"}}"#, field: "measurement")
        expectError(#"{"version": 2, \#(ok)}"#, field: "version")
        expectError(#"{"version": "1", \#(ok)}"#, field: "version")
        expectError(#"{"version": true, \#(ok)}"#, field: "version")
        expectError(#"{"version": 1.5, \#(ok)}"#, field: "version")
        expectError(#"{"version": 1, "measurement": 3, "operator": {"type": "denoise"}}"#, field: "measurement")
        expectError(#"{"version": 1, "measurement": "../y.npy", "operator": {"type": "denoise"}}"#, field: "measurement")
        expectError(#"{"version": 1, "measurement": "/etc/passwd", "operator": {"type": "denoise"}}"#, field: "measurement")
        expectError(#"{"version": 1, "measurement": "sub/y.npy", "operator": {"type": "denoise"}}"#, field: "measurement")
        expectError(#"{"version": 1, "measurement": ".hidden.npy", "operator": {"type": "denoise"}}"#, field: "measurement")
        expectError(#"{"version": 1, "measurement": "calibration/../../x", "operator": {"type": "denoise"}}"#, field: "measurement")
        expectError(#"{"version": 1, "measurement": "other.json", "operator": {"type": "denoise"}}"#, field: "measurement")
        expectError(#"{"version": 1, "measurement": "y.npy", "operator": {"factor": 2}}"#, field: "operator.type")
        expectError(#"{"version": 1, "measurement": "y.npy", "operator": "denoise"}"#, field: "operator")
        expectError(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "xray"}}"#, code: "operator.unknown", field: "operator.type")
        expectError(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "mask": "../m.png"}}"#, field: "operator.mask")
        expectError(#"{"version": 1, \#(ok), "solver": {"method": "magic"}}"#, field: "solver.method")
        expectError(#"{"version": 1, \#(ok), "solver": {"stpes": 3}}"#, field: "solver.stpes")
        expectError(#"{"version": 1, \#(ok), "solver": {"steps": 0}}"#, field: "solver.steps")
        expectError(#"{"version": 1, \#(ok), "solver": {"steps": "3"}}"#, field: "solver.steps")
        expectError(#"{"version": 1, \#(ok), "solver": {"lr": -1}}"#, field: "solver.lr")
        expectError(#"{"version": 1, \#(ok), "solver": []}"#, field: "solver")
        expectError(#"{"version": 1, \#(ok), "noise_sigma": -0.1}"#, field: "noise_sigma")
        expectError(#"{"version": 1, \#(ok), "noise_sigma": "0.1"}"#, field: "noise_sigma")
        expectError(#"{"version": 1, \#(ok), "seed": -1}"#, field: "seed")
        expectError(#"{"version": 1, \#(ok), "seed": true}"#, field: "seed")
        expectError(#"{"version": 1, \#(ok), "truth": 7}"#, field: "truth")
        expectError(#"{"version": 1, \#(ok), "image_shape": [3, 32]}"#, field: "image_shape")
        expectError(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "denoise"}, "version": NaN}"#, field: nil)
    }

    func testJobNames() {
        for good in ["a", "frame-17", "A.b_c-1", String(repeating: "x", count: 128)] { XCTAssertTrue(JobName.isValid(good), good) }
        for bad in ["", ".hidden", "a b", "a/b", "..", "é", String(repeating: "x", count: 129), "a\u{0}b"] {
            XCTAssertFalse(JobName.isValid(bad), bad)
        }
        XCTAssertEqual(JobName.sanitized("bad name!"), "bad_name_")
        XCTAssertEqual(JobName.sanitized("..x"), "x")
        XCTAssertTrue(JobName.isValid(JobName.sanitized("/../..")))
    }

    func testBestEffortJobFilesOfARejectedManifest() {
        let files = Manifest.bestEffortJobFiles(Data(#"{"version": 9, "measurement": "m.npy", "truth": "../t.png", "operator": {"mask": "k.npy", "matrix": "calibration/A.npy"}}"#.utf8))
        XCTAssertEqual(files, ["m.npy", "k.npy"])
    }
}

final class SafeFileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("safefile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func code(_ name: String, max: Int = 1 << 20) -> String? {
        do { _ = try SafeFile.read(dir.appendingPathComponent(name).path, display: name, field: "measurement", maxBytes: max); return nil } catch let e as JobError {
            XCTAssertEqual(e.field, "measurement")
            XCTAssertTrue(e.message.contains(name), e.message)
            return e.code
        } catch { return "other" }
    }

    func testRefusesLinksDirectoriesFifosAndLargeFiles() throws {
        try Data("hello".utf8).write(to: dir.appendingPathComponent("ok.npy"))
        XCTAssertEqual(try SafeFile.read(dir.appendingPathComponent("ok.npy").path, display: "ok.npy", field: nil), Data("hello".utf8))
        XCTAssertEqual(symlink("/etc/passwd", dir.appendingPathComponent("link.npy").path), 0)
        XCTAssertEqual(symlink(dir.appendingPathComponent("ok.npy").path, dir.appendingPathComponent("inner.npy").path), 0)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("d.npy"), withIntermediateDirectories: false)
        XCTAssertEqual(mkfifo(dir.appendingPathComponent("f.npy").path, 0o644), 0)
        try Data(count: 2048).write(to: dir.appendingPathComponent("big.npy"))
        XCTAssertNil(code("ok.npy"))
        XCTAssertEqual(code("link.npy"), "file.unreadable")
        XCTAssertEqual(code("inner.npy"), "file.unreadable", "even a link to a good file is refused")
        XCTAssertEqual(code("d.npy"), "file.unreadable")
        XCTAssertEqual(code("f.npy"), "file.unreadable")
        XCTAssertEqual(code("big.npy", max: 1024), "file.unreadable")
        XCTAssertNil(code("big.npy", max: 2048))
        XCTAssertEqual(code("absent.npy"), "file.missing")
    }

    func testClaimedJobResolvesAndChecksFiles() throws {
        let cal = dir.appendingPathComponent("calibration")
        try FileManager.default.createDirectory(at: cal, withIntermediateDirectories: false)
        try Data([1]).write(to: dir.appendingPathComponent("y.npy"))
        try Data([2]).write(to: cal.appendingPathComponent("mask.npy"))
        let m = try Manifest.parse(Data(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "mask": "calibration/mask.npy"}, "truth": "t.png"}"#.utf8), file: "j.json")
        let job = ClaimedJob(name: "j", manifest: m, jobDirectory: dir, calibrationDirectory: cal, settings: JobSettings())
        XCTAssertEqual(job.path(of: .calibration("mask.npy")), cal.appendingPathComponent("mask.npy").path)
        XCTAssertEqual(try job.read(.calibration("mask.npy"), field: "operator.mask"), Data([2]))
        XCTAssertThrowsError(try job.checkFiles()) { e in
            XCTAssertEqual((e as? JobError)?.code, "file.missing")
            XCTAssertEqual((e as? JobError)?.field, "truth")
        }
        try Data([3]).write(to: dir.appendingPathComponent("t.png"))
        XCTAssertNoThrow(try job.checkFiles())
    }

    func testJobControlCancellationAndProgressClamp() {
        let seen = LockedBox<[Double]>([])
        let c = JobControl { f, _ in seen.mutate { $0.append(f) } }
        c.progress(0.5); c.progress(2); c.progress(.nan)
        XCTAssertEqual(seen.value, [0.5, 1, 0])
        XCTAssertNoThrow(try c.checkCancelled())
        c.cancel()
        XCTAssertTrue(c.isCancelled)
        XCTAssertThrowsError(try c.checkCancelled()) { XCTAssertTrue($0 is JobCancelled) }
    }
}

final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T { lock.lock(); defer { lock.unlock() }; return v }
    func mutate(_ f: (inout T) -> Void) { lock.lock(); f(&v); lock.unlock() }
}

final class ManifestLoadingTests: XCTestCase {
    func testLoadResolvesBesideTheManifestAndAppliesTheSameRules() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("mload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("calibration"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data([1]).write(to: dir.appendingPathComponent("y.npy"))
        try Data([2]).write(to: dir.appendingPathComponent("calibration/m.npy"))
        try Data(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "mask": "calibration/m.npy"}, "solver": {"steps": 4}}"#.utf8)
            .write(to: dir.appendingPathComponent("job-1.json"))
        let job = try ClaimedJob.load(manifestPath: dir.appendingPathComponent("job-1.json").path) { m in
            JobSettings(solver: m.solver ?? SolverSettings(), maxBudget: 10)
        }
        XCTAssertEqual(job.name, "job-1")
        XCTAssertEqual(job.settings.solver.steps, 4)
        XCTAssertEqual(try job.read(.calibration("m.npy"), field: "operator.mask"), Data([2]))
        try Data(String(repeating: " ", count: 2000).utf8).write(to: dir.appendingPathComponent("big.json"))
        XCTAssertThrowsError(try ClaimedJob.load(manifestPath: dir.appendingPathComponent("big.json").path, maxManifestBytes: 1000)) {
            XCTAssertEqual(($0 as? JobError)?.code, "file.unreadable")
        }
        try Data(#"{"version": 1, "measurement": "gone.npy", "operator": {"type": "denoise"}}"#.utf8).write(to: dir.appendingPathComponent("j2.json"))
        XCTAssertThrowsError(try ClaimedJob.load(manifestPath: dir.appendingPathComponent("j2.json").path)) {
            XCTAssertEqual(($0 as? JobError)?.code, "file.missing")
        }
    }
}

final class OperatorObjectTests: XCTestCase {
    /// The operators layer reads NSNumber objCType to tell booleans, integers and reals apart.
    func testOperatorJSONObjectKeepsJSONTypes() throws {
        // (The manifest parser validates operator keys, so the boolean is checked on a value of its own.)
        let m = try Manifest.parse(Data(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "gaussian_blur", "size": 5, "sigma": 1.5}}"#.utf8), file: "j.json")
        for object in [m.operatorJSONObject, m.operatorObject.mapValues(\.foundationValue) as Any] {
            let o = try XCTUnwrap(object as? [String: Any])
            XCTAssertEqual(o["type"] as? String, "gaussian_blur")
            let size = try XCTUnwrap(o["size"] as? NSNumber)
            let sigma = try XCTUnwrap(o["sigma"] as? NSNumber)
            XCTAssertFalse(["c", "f", "d"].contains(String(cString: size.objCType)), String(cString: size.objCType))
            XCTAssertEqual(size.intValue, 5)
            XCTAssertEqual(String(cString: sigma.objCType), "d")
            XCTAssertEqual(sigma.doubleValue, 1.5)
        }
        let flag = try XCTUnwrap(JSONValue.bool(true).foundationValue as? NSNumber)
        XCTAssertEqual(String(cString: flag.objCType), "c")
        let box = try Manifest.parse(Data(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "box": [1, 2, 3, 4]}}"#.utf8), file: "j.json")
        XCTAssertEqual((box.operatorJSONObject as? [String: Any])?["box"] as? [Int], [1, 2, 3, 4])
    }
}
