import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// End-to-end tests that launch the real `dmilod` binary on a temporary spool, with the test-only
/// `--test-runner` so no model is needed.
final class DaemonProcessTests: XCTestCase {
    /// Config for fast tests: quick rescans, short grace for missing files.
    func fastConfig(_ spool: TempSpool, extra: String = "") throws -> String {
        let path = spool.url("dmilod.json").path
        try Data(#"{"rescan_seconds": 0.2, "missing_file_grace_seconds": 0.3\#(extra)}"#.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    // (a) good jobs plus hostile ones: goods land in done/, each hostile one in failed/ with error.json and its inputs.
    func testHostileJobsFailCleanlyAndDaemonStaysUp() throws {
        let s = try TempSpool()
        try s.drop("mask.npy", TempSpool.npy)
        try FileManager.default.moveItem(at: s.url("incoming/mask.npy"), to: s.url("calibration/mask.npy"))
        try s.dropGoodJob("good1")
        try s.dropGoodJob("good2", extra: #", "solver": {"method": "dmilo", "steps": 3}, "seed": 7, "noise_sigma": 0.05"#)
        try s.drop("good3.npy", TempSpool.npy)
        try s.drop("good3-truth.npy", TempSpool.npy)
        try s.drop("good3.json", Data(#"{"version": 1, "measurement": "good3.npy", "truth": "good3-truth.npy", "operator": {"type": "inpainting", "mask": "calibration/mask.npy"}}"#.utf8))

        // name → (manifest text, expected code, expected field, extra data files that must travel with it)
        var hostile: [(String, String, String, String?, [String])] = [
            ("unknown-key", #"{"version": 1, "measurement": "unknown-key.npy", "operator": {"type": "denoise"}, "colour": "red"}"#, "manifest.invalid", "colour", ["unknown-key.npy"]),
            ("unknown-solver-key", #"{"version": 1, "measurement": "usk.npy", "operator": {"type": "denoise"}, "solver": {"stpes": 3}}"#, "manifest.invalid", "solver.stpes", ["usk.npy"]),
            ("bad-version", #"{"version": 2, "measurement": "bv.npy", "operator": {"type": "denoise"}}"#, "manifest.invalid", "version", ["bv.npy"]),
            ("version-string", #"{"version": "1", "measurement": "vs.npy", "operator": {"type": "denoise"}}"#, "manifest.invalid", "version", ["vs.npy"]),
            ("wrong-type", #"{"version": 1, "measurement": 5, "operator": {"type": "denoise"}}"#, "manifest.invalid", "measurement", []),
            ("dotdot", #"{"version": 1, "measurement": "../../etc/passwd", "operator": {"type": "denoise"}}"#, "manifest.invalid", "measurement", []),
            ("absolute", #"{"version": 1, "measurement": "/etc/passwd", "operator": {"type": "denoise"}}"#, "manifest.invalid", "measurement", []),
            ("calib-escape", #"{"version": 1, "measurement": "calibration/../x.npy", "operator": {"type": "denoise"}}"#, "manifest.invalid", "measurement", []),
            ("symlink", #"{"version": 1, "measurement": "passwd.npy", "operator": {"type": "denoise"}}"#, "file.unreadable", "measurement", ["passwd.npy"]),
            ("missing", #"{"version": 1, "measurement": "nothere.npy", "operator": {"type": "denoise"}}"#, "file.missing", "measurement", []),
            ("calib-missing", #"{"version": 1, "measurement": "cm.npy", "operator": {"type": "inpainting", "mask": "calibration/nope.npy"}}"#, "file.missing", "operator.mask", ["cm.npy"]),
            ("nonjson", "{\"version\": 1, \"measurement\": ", "manifest.invalid", nil, []),
            ("array-root", "[1, 2, 3]", "manifest.invalid", nil, []),
            ("directory", #"{"version": 1, "measurement": "adir", "operator": {"type": "denoise"}}"#, "file.unreadable", "measurement", ["adir"]),
            ("fifo", #"{"version": 1, "measurement": "fifo.npy", "operator": {"type": "denoise"}}"#, "file.unreadable", "measurement", ["fifo.npy"]),
            ("truncated", #"{"version": 1, "measurement": "trunc.npy", "operator": {"type": "denoise"}}"#, "file.unreadable", "measurement", ["trunc.npy"]),
            ("unknown-operator", #"{"version": 1, "measurement": "uo.npy", "operator": {"type": "xray"}}"#, "operator.unknown", "operator.type", ["uo.npy"]),
            ("operator-string", #"{"version": 1, "measurement": "os.npy", "operator": "denoise"}"#, "manifest.invalid", "operator", ["os.npy"]),
            ("bool-seed", #"{"version": 1, "measurement": "bs.npy", "operator": {"type": "denoise"}, "seed": true}"#, "manifest.invalid", "seed", ["bs.npy"]),
            ("bad-method", #"{"version": 1, "measurement": "bm.npy", "operator": {"type": "denoise"}, "solver": {"method": "magic"}}"#, "manifest.invalid", "solver.method", ["bm.npy"]),
            ("steals-manifest", #"{"version": 1, "measurement": "good1.json", "operator": {"type": "denoise"}}"#, "manifest.invalid", "measurement", []),
        ]
        // Nesting deep enough to overflow a naive recursive parser, and a manifest over the 1 MiB limit.
        hostile.append(("deep", String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000), "manifest.invalid", nil, []))
        // (huge)
        hostile.append(("huge", "{\"version\": 1, \"pad\": \"" + String(repeating: "x", count: 1_100_000) + "\"}", "manifest.invalid", nil, []))
        for (name, text, _, _, files) in hostile {
            for f in files where f.hasSuffix(".npy") && !["passwd.npy", "fifo.npy", "trunc.npy"].contains(f) {
                try s.drop(f, TempSpool.npy)
            }
            try s.drop("\(name).json", Data(text.utf8))
        }
        XCTAssertEqual(symlink("/etc/passwd", s.url("incoming/passwd.npy").path), 0)
        XCTAssertEqual(mkfifo(s.url("incoming/fifo.npy").path, 0o644), 0)
        try FileManager.default.createDirectory(at: s.url("incoming/adir"), withIntermediateDirectories: false)
        try s.drop("trunc.npy", TempSpool.npy.prefix(4))
        // A badly named job and a manifest that is itself a symlink.
        try s.drop("bad name!.json", Data(#"{"version": 1, "measurement": "x.npy", "operator": {"type": "denoise"}}"#.utf8))
        try Data(#"{"version": 1, "measurement": "good1.npy", "operator": {"type": "denoise"}}"#.utf8).write(to: s.url("elsewhere.json"))
        XCTAssertEqual(symlink(s.url("elsewhere.json").path, s.url("incoming/mlink.json").path), 0)

        let d = try DaemonProcess(["--spool", s.path, "--config", try fastConfig(s), "--test-runner", "sleep:20"])
        let expectedFailed = hostile.count + 2
        let drained = waitUntil(timeout: 40) {
            s.visible("done").count == 3 && s.visible("failed").count == expectedFailed
        }
        XCTAssertTrue(drained, "done=\(s.visible("done")) failed=\(s.visible("failed"))\n\(d.stderr)")
        XCTAssertTrue(d.process.isRunning, "daemon died on hostile input:\n\(d.stderr)")
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0, d.stderr)

        XCTAssertEqual(s.visible("done"), ["good1", "good2", "good3"])
        for g in ["good1", "good2", "good3"] {
            let files = s.list("done/\(g)")
            for f in ["result.txt", "metrics.json", "\(g).json", "\(g).npy"] { XCTAssertTrue(files.contains(f), "\(g): \(files)") }
        }
        XCTAssertTrue(s.list("done/good3").contains("good3-truth.npy"))
        XCTAssertEqual(s.list("calibration"), ["mask.npy"], "calibration files stay where they are")
        let r2 = try String(contentsOf: s.url("done/good2/result.txt"), encoding: .utf8)
        XCTAssertTrue(r2.contains("method=dmilo"), r2)

        for (name, _, code, field, files) in hostile {
            guard let e = s.errorJSON(name) else { XCTFail("no failed/\(name)/error.json; failed=\(s.visible("failed"))"); continue }
            XCTAssertEqual(e["error"] as? String, code, "\(name): \(e)")
            XCTAssertEqual(e["field"] as? String, field, "\(name): \(e)")
            XCTAssertEqual(e["job"] as? String, name)
            XCTAssertFalse((e["message"] as? String ?? "").isEmpty)
            let kept = s.list("failed/\(name)")
            XCTAssertTrue(kept.contains("\(name).json"), "\(name): manifest not kept: \(kept)")
            for f in files { XCTAssertTrue(kept.contains(f), "\(name): input \(f) not kept: \(kept)") }
        }
        // The symlink travelled as a link and was never followed.
        var st = stat()
        XCTAssertEqual(lstat(s.url("failed/symlink/passwd.npy").path, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK)
        XCTAssertEqual(s.errorJSON("bad_name_")?["job"] as? String, "bad name!")
        XCTAssertEqual(s.errorJSON("mlink")?["error"] as? String, "manifest.invalid")
        XCTAssertEqual(s.visible("incoming"), [], "everything named by a manifest moved on")
        XCTAssertEqual(s.list("work"), [])
        XCTAssertTrue(d.stderr.contains("<4>job failed"), "journald priority prefix missing")
    }

    // (b) kill -9 during a job, restart: every job done exactly once.
    func testKillNineDuringJobThenRestartDoesEveryJobOnce() throws {
        let s = try TempSpool()
        let names = (0..<5).map { "k\($0)" }
        for n in names { try s.dropGoodJob(n) }
        let d = try DaemonProcess(["--spool", s.path, "--config", try fastConfig(s), "--test-runner", "sleep:300"])
        // Kill while a job sleeps in the runner: its attempt is recorded and publication has not started.
        let running = { () -> Bool in
            s.visible("work").contains { w in
                FileManager.default.fileExists(atPath: s.url("work/\(w)/.attempts").path)
                    && !FileManager.default.fileExists(atPath: s.url("work/\(w)/.final").path)
            }
        }
        XCTAssertTrue(waitUntil(timeout: 20) { s.visible("done").count >= 1 && running() }, d.stderr)
        usleep(50_000)
        d.signal(SIGKILL)
        d.wait()
        let inWork = s.visible("work")
        XCTAssertEqual(inWork.count, 1, "one job was running when killed")
        let again = try DaemonProcess.run(["--spool", s.path, "--once", "--test-runner", "sleep:10"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(s.visible("done"), names, "each job exactly once, no NAME.1 duplicates")
        XCTAssertEqual(s.visible("failed"), [])
        XCTAssertEqual(s.list("work"), [])
        XCTAssertEqual(s.visible("incoming"), [])
        XCTAssertEqual(s.list("done").filter { $0.hasPrefix(".") }, [], "no temp output folders left")
        XCTAssertTrue(again.stderr.contains("recovering job left in work/"), again.stderr)
    }

    // kill -9 at random moments (inside runs, claims and publications) many times: still exactly once.
    func testRandomKillNineStormLosesAndDuplicatesNothing() throws {
        let s = try TempSpool()
        let cfg = try fastConfig(s, extra: #", "attempts": 1000"#)
        let names = (0..<40).map { String(format: "r%02d", $0) }
        for n in names { try s.dropGoodJob(n) }
        var rng = SystemRandomNumberGenerator()
        var kills = 0
        for _ in 0..<25 where s.visible("done").count < names.count {
            kills += 1
            let d = try DaemonProcess(["--spool", s.path, "--config", cfg, "--test-runner", "sleep:10"])
            usleep(UInt32.random(in: 40_000...160_000, using: &rng))
            d.signal(SIGKILL)
            d.wait()
        }
        XCTAssertGreaterThanOrEqual(kills, 3)
        // The same config (attempts 1000): a job killed with its daemon every time counts attempts; here the kills
        // come faster than a worker starts, so the first job may collect many.
        let r = try DaemonProcess.run(["--spool", s.path, "--once", "--config", cfg, "--test-runner", "sleep:0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(s.visible("done"), names, "lost or duplicated jobs after \(kills) kills; failed: \(s.visible("failed").map { "\($0): \(String(describing: s.errorJSON($0)))" })\n\(r.stderr)")
        XCTAssertEqual(s.visible("failed"), [])
        XCTAssertEqual(s.list("work"), [])
        XCTAssertEqual(s.list("incoming"), [])
        XCTAssertEqual(s.list("done").filter { $0.hasPrefix(".") }, [])
        for n in names {
            XCTAssertEqual(Set(s.list("done/\(n)")), ["\(n).json", "\(n).npy", "metrics.json", "result.txt"], n)
        }
    }

    // A job whose process dies every time goes to failed/ with job.crashed after `attempts` runs; the daemon itself
    // survives (each job runs in a worker process) and leaves no temporary output folder behind.
    func testCrashingJobIsFailedAfterThreeAttempts() throws {
        let s = try TempSpool()
        try s.dropGoodJob("poison")
        let r = try DaemonProcess.run(["--spool", s.path, "--once", "--test-runner", "crash:10"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr.components(separatedBy: "job's worker process was killed by signal 9").count - 1, 3, r.stderr)
        XCTAssertEqual(s.errorJSON("poison")?["error"] as? String, "job.crashed")
        XCTAssertTrue(s.list("failed/poison").contains("poison.npy"))
        XCTAssertEqual(s.list("work"), [])
        XCTAssertEqual(s.list("done"), [], "no done/.tmp-NAME left by the dead attempts")
        XCTAssertEqual(s.list("failed").filter { $0.hasPrefix(".") }, [])
    }

    // (c) several writers drop 120 jobs while the daemon runs: all accounted for exactly once.
    func testConcurrentWritersUnderLoad() throws {
        let s = try TempSpool()
        let d = try DaemonProcess(["--spool", s.path, "--config", try fastConfig(s), "--jobs", "2", "--test-runner", "sleep:0"])
        let writers = 4, perWriter = 30
        DispatchQueue.concurrentPerform(iterations: writers) { w in
            for i in 0..<perWriter {
                try? s.dropGoodJob("w\(w)-\(i)")
                if i % 7 == 0 { usleep(2000) }
            }
        }
        let total = writers * perWriter
        XCTAssertTrue(waitUntil(timeout: 60) { s.visible("done").count >= total }, "done \(s.visible("done").count)\n\(d.stderr.suffix(2000))")
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0)
        let done = s.visible("done")
        XCTAssertEqual(done.count, total)
        XCTAssertEqual(Set(done), Set((0..<writers).flatMap { w in (0..<perWriter).map { "w\(w)-\($0)" } }))
        XCTAssertEqual(s.visible("failed"), [])
        XCTAssertEqual(s.visible("incoming"), [])
    }

    // (e) two daemons on one spool never run a job twice.
    func testTwoDaemonsOnOneSpoolNeverDuplicate() throws {
        let s = try TempSpool()
        let cfg = try fastConfig(s)
        for i in 0..<30 { try s.dropGoodJob("p\(i)") }
        let a = try DaemonProcess(["--spool", s.path, "--config", cfg, "--jobs", "2", "--test-runner", "sleep:15"])
        let b = try DaemonProcess(["--spool", s.path, "--config", cfg, "--jobs", "2", "--test-runner", "sleep:15"])
        for i in 30..<60 { try s.dropGoodJob("p\(i)"); usleep(3000) }
        XCTAssertTrue(waitUntil(timeout: 60) { s.visible("done").count >= 60 }, "done \(s.visible("done").count)")
        usleep(300_000)  // give a duplicate, if any, time to appear
        a.signal(SIGTERM); b.signal(SIGTERM)
        XCTAssertEqual(a.wait(), 0); XCTAssertEqual(b.wait(), 0)
        let done = s.visible("done")
        XCTAssertEqual(done, (0..<60).map { "p\($0)" }.sorted(), "a job ran twice (NAME.1) or went missing")
        var pids = Set<String>()
        for n in done {
            let text = try String(contentsOf: s.url("done/\(n)/result.txt"), encoding: .utf8)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("pid=") }) { pids.insert(String(line)) }
        }
        XCTAssertEqual(pids.count, 2, "both daemons should have taken jobs")
    }

    // (d) systemd notify protocol on a socket bound by the test.
    func testNotifySocketGetsReadyStatusWatchdogStopping() throws {
        let s = try TempSpool()
        let sockPath = s.url("notify.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            for (i, b) in sockPath.utf8.enumerated() where i < buf.count - 1 { buf[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0, String(cString: strerror(errno)))
        var tv = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

        try s.dropGoodJob("n1")
        let d = try DaemonProcess(
            ["--spool", s.path, "--config", try fastConfig(s), "--test-runner", "sleep:400"],
            environment: ["NOTIFY_SOCKET": sockPath, "WATCHDOG_USEC": "200000"])
        var messages: [String] = []
        func drain(_ seconds: Double) {
            let end = Date().addingTimeInterval(seconds)
            var buf = [UInt8](repeating: 0, count: 4096)
            while Date() < end {
                let n = recv(fd, &buf, buf.count, 0)
                if n > 0 { messages.append(String(decoding: buf[0..<n], as: UTF8.self)) }
            }
        }
        drain(1.0)
        XCTAssertTrue(waitUntil(timeout: 10) { s.visible("done") == ["n1"] })
        drain(0.4)
        d.signal(SIGHUP)
        drain(0.4)
        d.signal(SIGTERM)
        drain(0.5)
        XCTAssertEqual(d.wait(), 0, d.stderr)
        let all = messages.joined(separator: "\n")
        XCTAssertTrue(messages.contains("READY=1"), all)
        XCTAssertTrue(messages.contains { $0.hasPrefix("STATUS=running n1") }, all)
        XCTAssertTrue(messages.contains { $0.hasPrefix("STATUS=idle; queue 0; done 1") }, all)
        XCTAssertGreaterThanOrEqual(messages.filter { $0 == "WATCHDOG=1" }.count, 3, all)
        XCTAssertTrue(messages.contains("STOPPING=1"), all)
        XCTAssertTrue(messages.contains { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }, all)
        XCTAssertEqual(messages.filter { $0 == "READY=1" }.count, 2, "READY=1 at start and after the reload")
        XCTAssertLessThan(messages.firstIndex(of: "READY=1") ?? .max, messages.firstIndex(of: "STOPPING=1") ?? -1)
    }

    // The watchdog is fed only while jobs make progress: an idle second worker must not hide a hung job.
    func testWatchdogStarvesWhileAJobStalls() throws {
        let s = try TempSpool()
        let n = try NotifyListener(path: s.url("notify.sock").path)
        let d = try DaemonProcess(
            ["--spool", s.path, "--config", try fastConfig(s), "--jobs", "2", "--test-runner", "stall:1500"],
            environment: ["NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "200000"])
        n.drain(0.6)
        XCTAssertGreaterThanOrEqual(n.messages.filter { $0.text == "WATCHDOG=1" }.count, 3, "idle daemon pings")
        try s.dropGoodJob("hung")
        XCTAssertTrue(waitUntil(timeout: 10) { s.visible("work") == ["hung"] })
        let stallStart = Date()
        n.drain(1.0)
        let during = n.messages.filter { $0.text == "WATCHDOG=1" && $0.time > stallStart.addingTimeInterval(0.3) && $0.time < stallStart.addingTimeInterval(1.0) }
        XCTAssertEqual(during.count, 0, "pinged while the only job made no progress for > WATCHDOG_USEC")
        XCTAssertTrue(waitUntil(timeout: 10) { s.visible("done") == ["hung"] })
        let after = Date()
        n.drain(0.6)
        XCTAssertGreaterThanOrEqual(n.messages.filter { $0.text == "WATCHDOG=1" && $0.time > after }.count, 2, "pings resume when idle")
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0)
    }

    // Graceful stop during a job puts it back to incoming/ (inputs intact, attempt not counted), and a later run does it.
    func testSIGTERMPutsRunningJobBack() throws {
        let s = try TempSpool()
        try s.dropGoodJob("long")
        let d = try DaemonProcess(["--spool", s.path, "--config", try fastConfig(s), "--test-runner", "sleep:20000"])
        XCTAssertTrue(waitUntil(timeout: 10) { s.visible("work") == ["long"] })
        usleep(100_000)
        let t0 = Date()
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(timeout: 10), 0, d.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5, "stop should not wait for the 20 s job")
        XCTAssertEqual(s.visible("incoming"), ["long.json", "long.npy"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.url("incoming/.long.attempts").path), "counters never live in incoming/")
        XCTAssertEqual(s.list("work"), [])
        XCTAssertTrue(d.stderr.contains("put back to incoming/"), d.stderr)
        let r = try DaemonProcess.run(["--spool", s.path, "--once", "--test-runner", "sleep:10"])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(s.visible("done"), ["long"])
        XCTAssertEqual(s.list("incoming"), [])
    }

    // SIGHUP reloads the config (here: starts writing the metrics file); metrics follow the textfile format.
    func testSIGHUPReloadsConfigAndMetricsAreWritten() throws {
        let s = try TempSpool()
        let cfg = try fastConfig(s)
        let prom = s.url("dmilo.prom").path
        let d = try DaemonProcess(["--spool", s.path, "--config", cfg, "--test-runner", "sleep:10"])
        XCTAssertTrue(waitUntil(timeout: 10) { d.stderr.contains("dmilod started") })
        _ = try fastConfig(s, extra: #", "metrics_file": "\#(prom)""#)
        d.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 10) { d.stderr.contains("configuration reloaded") }, d.stderr)
        try s.dropGoodJob("m1")
        try s.drop("m2.json", Data("nonsense".utf8))
        XCTAssertTrue(waitUntil(timeout: 10) { s.visible("done").count == 1 && s.visible("failed").count == 1 })
        XCTAssertTrue(
            waitUntil(timeout: 5) {
                ((try? String(contentsOfFile: prom, encoding: .utf8)) ?? "").contains("dmilo_jobs_total{status=\"failed\"} 1")
            })
        let text = try String(contentsOfFile: prom, encoding: .utf8)
        for needle in [
            "dmilo_jobs_total{status=\"done\"} 1", "dmilo_queue_length 0", "dmilo_last_job_duration_seconds ",
            "dmilo_last_job_peak_rss_bytes ", "dmilo_last_success_timestamp_seconds ", "# TYPE dmilo_jobs_total counter",
        ] {
            XCTAssertTrue(text.contains(needle), "\(needle) missing in:\n\(text)")
        }
        XCTAssertTrue(text.hasSuffix("\n"))
        // A broken config on reload keeps the old one running.
        try Data("{\"jobs\": 0}".utf8).write(to: URL(fileURLWithPath: cfg))
        d.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 10) { d.stderr.contains("reload failed") }, d.stderr)
        XCTAssertTrue(d.process.isRunning)
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0)
    }

    func testUnusableSpoolOrModelExitsNonZeroWithOneLine() throws {
        let r1 = try DaemonProcess.run(["--spool", "/nonexistent/spool", "--once", "--test-runner", "sleep:1"])
        XCTAssertEqual(r1.status, 1)
        XCTAssertEqual(r1.stderr.split(separator: "\n").count, 1, r1.stderr)
        XCTAssertTrue(r1.stderr.contains("/nonexistent/spool"), r1.stderr)
        let s = try TempSpool()
        let r2 = try DaemonProcess.run(["--spool", s.path, "--model", s.url("missing.gguf").path], executable: try XCTUnwrap(DaemonBinary.product))
        XCTAssertEqual(r2.status, 1)
        XCTAssertEqual(r2.stderr.split(separator: "\n").count, 1, r2.stderr)
        XCTAssertTrue(r2.stderr.contains("missing.gguf"), r2.stderr)
        let cfg = s.url("bad.json")
        try Data(#"{"spool": "\#(s.path)", "treads": 4}"#.utf8).write(to: cfg)
        let r3 = try DaemonProcess.run(["--config", cfg.path, "--test-runner", "sleep:1", "--once"])
        XCTAssertEqual(r3.status, 1)
        XCTAssertTrue(r3.stderr.contains("unknown key `treads`"), r3.stderr)
    }
}
