// The spool's client side through the real binaries: `dmilo submit | wait | status | cancel` against `dmilod-test`
// (model-free runner: one 10 ms slice counts as one UNet evaluation) and, once, the real `dmilod` on the bundled model.

import DMiloFormats
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class SpoolClientTests: XCTestCase {
    /// Runs the built `dmilo` to completion.
    @discardableResult
    func dmilo(_ args: [String], timeout: Double = 60) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        guard let exe = DaemonBinary.find("dmilo") else { throw XCTSkip("dmilo binary not built") }
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read while it runs (a full pipe would block it), then collect the status.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// A job folder outside the spool: NAME.json naming DATA (a valid NPY) beside it.
    func jobFolder(_ s: TempSpool, _ name: String, data: String? = nil, extra: String = "") throws -> String {
        let dir = s.url("client-\(name)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = data ?? "\(name).npy"
        try TempSpool.npy.write(to: dir.appendingPathComponent(file))
        try Data(#"{"version": 1, "measurement": "\#(file)", "operator": {"type": "denoise"}\#(extra)}"#.utf8)
            .write(to: dir.appendingPathComponent("\(name).json"))
        return dir.appendingPathComponent("\(name).json").path
    }

    func config(_ s: TempSpool, _ extra: String = "") throws -> String {
        let path = s.url("dmilod.json").path
        try Data(#"{"rescan_seconds": 0.2, "missing_file_grace_seconds": 0.3\#(extra)}"#.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func progressJSON(_ s: TempSpool, _ name: String) -> [String: Any]? {
        guard let d = try? Data(contentsOf: s.url("work/\(name)/progress.json")) else { return nil }
        return (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
    }

    // The same JOB.json submitted twice while the first copy is still queued: the second copy's data file would
    // collide in incoming/, so it is queued as NAME.FILE and its manifest copy names that; both jobs then run.
    func testSecondCopyWhileQueuedGetsItsOwnDataFile() throws {
        let s = try TempSpool()
        for sub in ["incoming", "tmp"] { try FileManager.default.createDirectory(at: s.url(sub), withIntermediateDirectories: true) }
        let job = try jobFolder(s, "frame")
        XCTAssertEqual(try dmilo(["submit", "--spool", s.path, job]).status, 0)
        let second = try dmilo(["submit", "--spool", s.path, job, "--name", "frame-2"])
        XCTAssertEqual(second.status, 0, second.err)
        XCTAssertEqual(Set(s.visible("incoming")), ["frame.json", "frame.npy", "frame-2.json", "frame-2.frame.npy"])
        let queued = try JSONValue.parse(Data(contentsOf: s.url("incoming/frame-2.json"))).objectValue
        XCTAssertEqual(queued?["measurement"], .string("frame-2.frame.npy"))
        XCTAssertEqual(try Data(contentsOf: s.url("incoming/frame-2.frame.npy")), try Data(contentsOf: s.url("incoming/frame.npy")))
        // A third copy would need frame-3.frame.npy: fine too; the daemon then runs all of them.
        XCTAssertEqual(try dmilo(["submit", "--spool", s.path, job, "--name", "frame-3"]).status, 0)
        let d = try DaemonProcess(["--spool", s.path, "--config", try config(s), "--test-runner", "sleep:100"])
        for name in ["frame", "frame-2", "frame-3"] {
            let w = try dmilo(["wait", "--spool", s.path, name, "--timeout", "30"])
            XCTAssertEqual(w.status, 0, w.err + d.stderr)
        }
        XCTAssertTrue(s.visible("done/frame-2").contains("frame-2.frame.npy"))
    }

    // submit → wait → result; a name that is queued or finished is refused unless --name gives another.
    func testSubmitWaitResultAndNameRefusals() throws {
        let s = try TempSpool()
        let d = try DaemonProcess(["--spool", s.path, "--config", try config(s), "--test-runner", "sleep:1500"])
        XCTAssertTrue(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: s.url("cancel").path) }, d.stderr)
        let job = try jobFolder(s, "frame")
        let first = try dmilo(["submit", "--spool", s.path, job])
        XCTAssertEqual(first.status, 0, first.err)
        XCTAssertEqual(first.out, "frame\n")
        XCTAssertEqual(s.list("tmp"), [], "the staging folder is removed")
        // Queued or running now: refused, and nothing of the second copy lands in incoming/.
        let again = try dmilo(["submit", "--spool", s.path, job])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.err.contains("job frame is already"), again.err)
        XCTAssertTrue(again.err.contains("--name"), again.err)

        let waited = try dmilo(["wait", "--spool", s.path, "frame", "--timeout", "30"])
        XCTAssertEqual(waited.status, 0, waited.err + d.stderr)
        XCTAssertEqual(waited.out, s.url("done/frame").path + "\n")
        XCTAssertEqual(
            s.visible("done/frame"), ["frame.json", "frame.npy", "metrics.json", "result.txt"],
            "results beside the job's files; no progress.json")
        // Finished: still refused under that name; accepted under another.
        let finished = try dmilo(["submit", "--spool", s.path, job])
        XCTAssertEqual(finished.status, 1)
        XCTAssertTrue(finished.err.contains("already finished"), finished.err)
        let renamed = try dmilo(["submit", "--spool", s.path, job, "--name", "frame-2"])
        XCTAssertEqual(renamed.status, 0, renamed.err)
        XCTAssertEqual(renamed.out, "frame-2\n")
        XCTAssertEqual(try dmilo(["wait", "--spool", s.path, "frame-2", "--timeout", "30"]).status, 0)
        XCTAssertEqual(
            try String(contentsOf: s.url("done/frame-2/result.txt"), encoding: .utf8).split(separator: "\n").first,
            "job=frame-2")

        // Invalid manifests are refused with the daemon's own messages, before anything is copied.
        let bad = try jobFolder(s, "bad", extra: #", "noise_sigma": "high""#)
        let refused = try dmilo(["submit", "--spool", s.path, bad])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.err.contains("manifest.invalid") && refused.err.contains("noise_sigma"), refused.err)
        let missing = try jobFolder(s, "lost", data: "lost.npy")
        try FileManager.default.removeItem(atPath: (missing as NSString).deletingLastPathComponent + "/lost.npy")
        let noData = try dmilo(["submit", "--spool", s.path, missing])
        XCTAssertEqual(noData.status, 1)
        XCTAssertTrue(noData.err.contains("lost.npy"), noData.err)
        let badName = try dmilo(["submit", "--spool", s.path, job, "--name", ".hidden"])
        XCTAssertEqual(badName.status, 1)
        XCTAssertEqual(s.visible("incoming"), [])
        XCTAssertEqual(s.list("tmp"), [])
    }

    // wait: exit 2 after the timeout (no daemon), 1 with the folder for a failed job.
    func testWaitTimeoutIsExit2AndFailedIsExit1() throws {
        let s = try TempSpool()
        for dir in ["work", "done", "failed"] { try FileManager.default.createDirectory(at: s.url(dir), withIntermediateDirectories: true) }
        let t0 = Date()
        let r = try dmilo(["wait", "--spool", s.path, "never", "--timeout", "0.5"])
        XCTAssertEqual(r.status, 2, r.err)
        XCTAssertEqual(r.out, "")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 0.5)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)
        // A result published while wait blocks wakes it (inotify on the rename into failed/).
        let waiter = Process()
        waiter.executableURL = URL(fileURLWithPath: try XCTUnwrap(DaemonBinary.find("dmilo")))
        waiter.arguments = ["wait", "--spool", s.path, "late", "--timeout", "30"]
        waiter.standardOutput = FileHandle.nullDevice
        try waiter.run()
        usleep(300_000)
        try FileManager.default.createDirectory(at: s.url("failed/.tmp-late"), withIntermediateDirectories: true)
        XCTAssertEqual(rename(s.url("failed/.tmp-late").path, s.url("failed/late").path), 0)
        let published = Date()
        XCTAssertTrue(waitUntil(timeout: 10) { !waiter.isRunning })
        XCTAssertLessThan(Date().timeIntervalSince(published), 5)
        XCTAssertEqual(waiter.terminationStatus, 1)
        let failed = try dmilo(["wait", "--spool", s.path, "late"])
        XCTAssertEqual(failed.status, 1)
        XCTAssertEqual(failed.out, s.url("failed/late").path + "\n")
        XCTAssertEqual(try dmilo(["wait", "--spool", s.path + "/nowhere", "x", "--timeout", "1"]).status, 1)
    }

    // status --json lists queued, running (with progress.json's fields), done and failed; cancel serves a queued and a
    // running job (failed/NAME, job.cancelled, inputs kept, cancel file gone). Jobs in worker processes (the default).
    func testStatusAndCancelWithWorkerProcesses() throws { try statusAndCancel(isolated: true) }

    // The same with jobs inside the daemon (`isolate_jobs: false`).
    func testStatusAndCancelInProcess() throws { try statusAndCancel(isolated: false) }

    func statusAndCancel(isolated: Bool) throws {
        let s = try TempSpool()
        // One finished and one failed job first (a --once run).
        try s.dropGoodJob("good")
        try s.drop("broken.json", Data(#"{"version": 1}"#.utf8))
        _ = try DaemonProcess.run(["--spool", s.path, "--once", "--test-runner", "sleep:10"])
        XCTAssertEqual(s.visible("done"), ["good"])
        XCTAssertEqual(s.visible("failed"), ["broken"])
        let notify = try NotifyListener(path: s.url("notify.sock").path)
        let d = try DaemonProcess(
            [
                "--spool", s.path, "--config", try config(s, #", "isolate_jobs": \#(isolated)"#),
                "--test-runner", "sleep:30000",
            ], environment: ["NOTIFY_SOCKET": notify.path])
        XCTAssertEqual(try dmilo(["submit", "--spool", s.path, try jobFolder(s, "long")]).status, 0)
        XCTAssertTrue(waitUntil(timeout: 10) { (self.progressJSON(s, "long")?["unet_evaluations"] as? Int ?? 0) > 0 }, d.stderr)
        XCTAssertEqual(try dmilo(["submit", "--spool", s.path, try jobFolder(s, "later")]).status, 0)

        let st = try dmilo(["status", "--spool", s.path, "--json"])
        XCTAssertEqual(st.status, 0, st.err)
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(st.out.utf8)) as? [String: Any])
        XCTAssertEqual((o["queued"] as? [[String: Any]])?.compactMap { $0["job"] as? String }, ["later"])
        XCTAssertEqual((o["done"] as? [[String: Any]])?.compactMap { $0["job"] as? String }, ["good"])
        let failed = try XCTUnwrap(o["failed"] as? [[String: Any]])
        XCTAssertEqual(failed.compactMap { $0["job"] as? String }, ["broken"])
        XCTAssertEqual(failed.first?["error"] as? String, "manifest.invalid")
        let running = try XCTUnwrap(o["running"] as? [[String: Any]])
        XCTAssertEqual(running.compactMap { $0["job"] as? String }, ["long"])
        let progress = try XCTUnwrap(running.first?["progress"] as? [String: Any])
        XCTAssertEqual(
            Set(progress.keys),
            [
                "method", "stage", "outer", "inner", "unet_evaluations", "budget", "residual",
                "elapsed_seconds",
            ])
        XCTAssertEqual(progress["budget"] as? Int, 3000)
        XCTAssertGreaterThan(progress["unet_evaluations"] as? Int ?? 0, 0)
        // progress.json is rewritten (at most once a second) while the job runs.
        let before = progress["unet_evaluations"] as? Int ?? 0
        XCTAssertTrue(waitUntil(timeout: 5) { (self.progressJSON(s, "long")?["unet_evaluations"] as? Int ?? 0) > before })
        // The same summary as systemd STATUS=.
        notify.drain(1.2)
        let statuses = notify.messages.map(\.text).filter { $0.hasPrefix("STATUS=running long ") }
        XCTAssertTrue(statuses.contains { $0.contains("UNet evaluations") && $0.contains("/3000") }, "\(statuses.suffix(3))")
        let text = try dmilo(["status", "--spool", s.path])
        XCTAssertTrue(text.out.contains("running (1)\n  long  ") && text.out.contains("UNet evaluations"), text.out)

        // Cancel the queued job: straight to failed/, inputs kept, request removed.
        XCTAssertEqual(try dmilo(["cancel", "--spool", s.path, "later"]).status, 0)
        XCTAssertEqual(try dmilo(["wait", "--spool", s.path, "later", "--timeout", "10"]).status, 1)
        XCTAssertEqual(s.errorJSON("later")?["error"] as? String, "job.cancelled")
        XCTAssertEqual(s.visible("failed/later"), ["error.json", "later.json", "later.npy"])
        XCTAssertTrue(waitUntil(timeout: 5) { s.list("cancel").isEmpty })
        XCTAssertTrue(s.visible("work").contains("long"), "the running job is not affected")

        // Cancel the running job: it stops at its next evaluation, well before its 30 s.
        let t0 = Date()
        XCTAssertEqual(try dmilo(["cancel", "--spool", s.path, "long"]).status, 0)
        let w = try dmilo(["wait", "--spool", s.path, "long", "--timeout", "20"])
        XCTAssertEqual(w.status, 1, w.err + d.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)
        let e = try XCTUnwrap(s.errorJSON("long"))
        XCTAssertEqual(e["error"] as? String, "job.cancelled")
        XCTAssertTrue((e["message"] as? String ?? "").contains("while running"), "\(e)")
        XCTAssertEqual(s.visible("failed/long"), ["error.json", "long.json", "long.npy"], "inputs kept, no progress.json")
        XCTAssertTrue(waitUntil(timeout: 5) { s.list("cancel").isEmpty })
        XCTAssertEqual(s.list("work"), [])
        XCTAssertEqual(s.list("failed").filter { $0.hasPrefix(".") }, [])
        XCTAssertEqual(s.list("done").filter { $0.hasPrefix(".") }, [])
        // A finished job cannot be cancelled; the daemon is still up.
        XCTAssertEqual(try dmilo(["cancel", "--spool", s.path, "good"]).status, 1)
        XCTAssertNil(d.wait(timeout: 0.1), "daemon exited: \(d.stderr)")
    }

    // Deleting work/NAME while the job runs: the job is stopped and ends in failed/NAME (job.cancelled, saying so);
    // nothing is left in work/ or as failed/.tmp-NAME, and the daemon goes on with the next job.
    func testDeletingTheWorkFolderEndsTheJobCleanly() throws {
        let s = try TempSpool()
        let d = try DaemonProcess(["--spool", s.path, "--config", try config(s), "--test-runner", "sleep:30000"])
        try s.dropGoodJob("doomed")
        XCTAssertTrue(waitUntil(timeout: 10) { self.progressJSON(s, "doomed") != nil }, d.stderr)
        try FileManager.default.removeItem(at: s.url("work/doomed"))
        XCTAssertEqual(try dmilo(["wait", "--spool", s.path, "doomed", "--timeout", "20"]).status, 1, d.stderr)
        let e = try XCTUnwrap(s.errorJSON("doomed"))
        XCTAssertEqual(e["error"] as? String, "job.cancelled")
        XCTAssertTrue((e["message"] as? String ?? "").contains("deleted"), "\(e)")
        XCTAssertEqual(s.list("failed"), ["doomed"])
        XCTAssertEqual(s.list("done"), [])
        XCTAssertTrue(waitUntil(timeout: 5) { s.list("work").isEmpty }, "\(s.list("work"))")
        // The daemon carries on.
        try s.dropGoodJob("next", extra: "")
        XCTAssertTrue(waitUntil(timeout: 10) { s.visible("work") == ["next"] }, d.stderr)
        XCTAssertNil(d.wait(timeout: 0.1), d.stderr)
    }

    // A cancel request naming no job does not disturb anything and is removed once older than a minute; an entry
    // that cannot be a job name is removed at once.
    func testUnmatchedCancelRequestsAreRemoved() throws {
        let s = try TempSpool()
        let d = try DaemonProcess(["--spool", s.path, "--config", try config(s), "--test-runner", "sleep:10"])
        XCTAssertTrue(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: s.url("cancel").path) }, d.stderr)
        let fresh = try dmilo(["cancel", "--spool", s.path, "ghost"])
        XCTAssertEqual(fresh.status, 0)
        XCTAssertTrue(fresh.err.contains("no job ghost is queued or running"), fresh.err)
        FileManager.default.createFile(atPath: s.url("cancel/old-ghost").path, contents: nil)
        var old = [timeval(tv_sec: time(nil) - 120, tv_usec: 0), timeval(tv_sec: time(nil) - 120, tv_usec: 0)]
        XCTAssertEqual(utimes(s.url("cancel/old-ghost").path, &old), 0)
        FileManager.default.createFile(atPath: s.url("cancel/bad name").path, contents: nil)
        XCTAssertTrue(waitUntil(timeout: 5) { s.list("cancel") == ["ghost"] }, "\(s.list("cancel"))")
        try s.dropGoodJob("fine")
        XCTAssertTrue(waitUntil(timeout: 10) { s.visible("done") == ["fine"] }, d.stderr)
        XCTAssertEqual(s.list("cancel"), ["ghost"], "a fresh request waits for its job")
    }

    // Once with the real daemon and the bundled model: submit → wait → results; then a longer job shows its progress
    // (UNet evaluations counted by the solver) and stops on cancel.
    func testRealDaemonOnBundledModel() throws {
        guard let dmilod = DaemonBinary.product else { throw XCTSkip("dmilod not built") }
        let s = try TempSpool()
        let model = DaemonBinary.repo.appendingPathComponent("Models/fashion-mnist-32").path
        let image = DaemonBinary.repo.appendingPathComponent("Tests/Data/fashion-mnist-test/test-00101.png").path
        func simulate(_ name: String, solver: String) throws -> String {
            let out = s.url("client-\(name)/\(name).json").path
            try FileManager.default.createDirectory(at: s.url("client-\(name)"), withIntermediateDirectories: true)
            let r = try dmilo([
                "simulate", "--image", image, "--operator", #"{"type":"super_resolution","factor":2}"#,
                "--noise-sigma", "0.01", "--seed", "1", "--out", out, "--solver", solver,
            ])
            XCTAssertEqual(r.status, 0, r.err)
            return out
        }
        let d = try DaemonProcess(
            ["--spool", s.path, "--model", model, "--config", try config(s, #", "threads": 1"#)],
            executable: dmilod)
        XCTAssertEqual(
            try dmilo([
                "submit", "--spool", s.path,
                try simulate("quick", solver: #"{"method":"dmilo","steps":2,"outer":1,"inner":2}"#),
            ]).out, "quick\n")
        let w = try dmilo(["wait", "--spool", s.path, "quick", "--timeout", "60"])
        XCTAssertEqual(w.status, 0, w.err + d.stderr)
        for f in ["reconstruction.png", "reconstruction.npy", "metrics.json", "montage.png", "quick.json", "quick.npy"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: s.url("done/quick/\(f)").path), f)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.url("done/quick/progress.json").path))

        XCTAssertEqual(
            try dmilo([
                "submit", "--spool", s.path,
                try simulate("slow", solver: #"{"method":"dmilo-pgd","steps":3,"outer":50,"inner":100,"budget":2000}"#),
            ]).status, 0)
        XCTAssertTrue(waitUntil(timeout: 60) { (self.progressJSON(s, "slow")?["unet_evaluations"] as? Int ?? 0) > 0 }, d.stderr)
        let p = try XCTUnwrap(progressJSON(s, "slow"))
        XCTAssertEqual(p["method"] as? String, "dmilo-pgd")
        XCTAssertEqual(p["budget"] as? Int, 2000)
        XCTAssertEqual(try dmilo(["cancel", "--spool", s.path, "slow"]).status, 0)
        XCTAssertEqual(try dmilo(["wait", "--spool", s.path, "slow", "--timeout", "30"]).status, 1, d.stderr)
        XCTAssertEqual(s.errorJSON("slow")?["error"] as? String, "job.cancelled")
        XCTAssertEqual(s.visible("failed/slow"), ["error.json", "slow-truth.png", "slow.json", "slow.npy"])
    }
}
