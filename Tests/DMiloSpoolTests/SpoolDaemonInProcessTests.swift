import DMiloJobs
import Foundation
import Logging
import XCTest

@testable import DMiloSpool

/// A runner shaped like the real one: behaviour chosen by job name.
struct ScriptedRunner: JobRunner {
    let seen = LockedSettings()
    let stop: @Sendable () -> Void

    func run(job: ClaimedJob, outputDirectory: URL, control: JobControl) throws -> JobOutcome {
        seen.record(job.name, job.settings)
        switch job.name {
        case "shape":
            throw JobError(code: JobError.measurementShape, message: "\(job.manifest.measurement): shape (2, 2) is not (C, H, W)", field: "measurement")
        case "boom":
            throw NSError(domain: "bug", code: 42)
        case "coded":
            throw ForeignCodedError(code: "file.invalid", message: "k.npy: kernel must be square", field: "operator.kernel")
        case "oddcode":
            throw ForeignCodedError(code: "truth.mismatch", message: "t.npy: not documented anywhere", field: "truth")
        case "cancel":
            stop()
            for _ in 0..<100 { try control.checkCancelled(); usleep(1000) }
            XCTFail("not cancelled")
        default:
            for i in 1...3 { control.progress(Double(i) / 3, "step \(i)/3") }
            let bytes = try job.read(job.manifest.measurement, field: "measurement")
            try bytes.write(to: outputDirectory.appendingPathComponent("reconstruction.npy"))
            try Data("{}".utf8).write(to: outputDirectory.appendingPathComponent("metrics.json"))
        }
        return JobOutcome(method: job.settings.solver.method ?? "-", unetEvaluations: 7)
    }
}

/// Stands in for another layer's error type (e.g. OperatorError) conforming to CodedError.
struct ForeignCodedError: CodedError {
    let code: String
    let message: String
    let field: String?
}

final class LockedSettings: @unchecked Sendable {
    private let lock = NSLock()
    private var v: [String: JobSettings] = [:]
    func record(_ k: String, _ s: JobSettings) { lock.lock(); v[k] = s; lock.unlock() }
    subscript(_ k: String) -> JobSettings? { lock.lock(); defer { lock.unlock() }; return v[k] }
}

final class DaemonBox: @unchecked Sendable { var daemon: SpoolDaemon? }

final class SpoolDaemonInProcessTests: XCTestCase {
    func testRunnerErrorsBecomeErrorJSONAndSettingsReachTheRunner() throws {
        let s = try TempSpool()
        let spool = Spool(root: s.root)
        try spool.prepare()
        var config = try DaemonConfig.parse(Data(#"{"max_budget": 50, "solver_defaults": {"denoise": {"method": "dps", "budget": 500}}}"#.utf8), file: "c.json")
        config.rescanSeconds = 0.1
        for n in ["ok", "shape", "boom", "coded", "oddcode"] { try s.dropGoodJob(n) }
        try s.dropGoodJob("tuned", extra: #", "solver": {"method": "dmilo", "steps": 4, "budget": 20}"#)
        let box = DaemonBox()
        let runner = ScriptedRunner(stop: { box.daemon?.requestStop() })
        let daemon = SpoolDaemon(
            spool: spool, config: config, runner: runner, logger: Logger(label: "test"),
            notifier: SystemdNotifier(watchdog: false), once: true)
        box.daemon = daemon
        daemon.run()
        XCTAssertEqual(s.visible("done"), ["ok", "tuned"])
        XCTAssertEqual(s.list("done/ok"), ["metrics.json", "ok.json", "ok.npy", "reconstruction.npy"])
        XCTAssertEqual(try Data(contentsOf: s.url("done/ok/reconstruction.npy")), TempSpool.npy)
        XCTAssertEqual(s.errorJSON("shape")?["error"] as? String, "measurement.shape")
        XCTAssertEqual(s.errorJSON("shape")?["field"] as? String, "measurement")
        XCTAssertEqual(s.errorJSON("boom")?["error"] as? String, "internal.error")
        XCTAssertEqual(s.errorJSON("coded")?["error"] as? String, "file.invalid")
        XCTAssertEqual(s.errorJSON("coded")?["field"] as? String, "operator.kernel")
        // Only documented codes reach error.json: anything else is published as internal.error, naming the original.
        XCTAssertEqual(s.errorJSON("oddcode")?["error"] as? String, "internal.error")
        XCTAssertTrue((s.errorJSON("oddcode")?["message"] as? String ?? "").contains("truth.mismatch"))
        XCTAssertEqual(s.list("failed/boom"), ["boom.json", "boom.npy", "error.json"], "partial outputs of a failed run are dropped")
        XCTAssertEqual(runner.seen["ok"]?.solver.method, "dps")
        XCTAssertEqual(runner.seen["ok"]?.maxBudget, 50)
        XCTAssertEqual(
            try runner.seen["ok"]?.solver.parameters(operatorType: "denoise", maxBudget: 50, seed: 0).budget, 50,
            "capped at max_budget where the settings become solver parameters")
        XCTAssertEqual(runner.seen["tuned"]?.solver.method, "dmilo")
        XCTAssertEqual(runner.seen["tuned"]?.solver.steps, 4)
        XCTAssertEqual(runner.seen["tuned"]?.solver.budget, 20)
        XCTAssertEqual(s.list("work"), [])
    }

    func testCancelledJobGoesBackToIncoming() throws {
        let s = try TempSpool()
        let spool = Spool(root: s.root)
        try spool.prepare()
        try s.dropGoodJob("cancel")
        let box = DaemonBox()
        let runner = ScriptedRunner(stop: { box.daemon?.requestStop() })
        let daemon = SpoolDaemon(
            spool: spool, config: DaemonConfig(), runner: runner, logger: Logger(label: "test"),
            notifier: SystemdNotifier(watchdog: false), once: true)
        box.daemon = daemon
        daemon.run()
        XCTAssertEqual(s.visible("incoming"), ["cancel.json", "cancel.npy"])
        XCTAssertEqual(s.visible("done") + s.visible("failed") + s.list("work"), [])
        XCTAssertEqual(s.list("done"), [], "no output folder left behind")
    }
}
