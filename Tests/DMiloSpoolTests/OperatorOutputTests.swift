import DMiloSpool
import Foundation
import Logging
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// What the daemon tells its operator and how it keeps the spool bounded, through the real `dmilod-test` binary:
/// retention of result folders, the metrics file, journal fields, `--once`'s exit status, models by name.
final class OperatorOutputTests: XCTestCase {
    func config(_ s: TempSpool, _ extra: String) throws -> String {
        let path = s.url("dmilod.json").path
        try Data(#"{"spool": "\#(s.path)", "isolate_jobs": true\#(extra)}"#.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A result folder `parent/name` holding one file, its mtime set `age` seconds in the past.
    func result(_ s: TempSpool, _ parent: String, _ name: String, age: Double) throws {
        let dir = s.url("\(parent)/\(name)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: dir.appendingPathComponent("metrics.json"))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -age)], ofItemAtPath: dir.path)
    }

    func prom(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    // Retention by count and by age: the oldest folders beyond the limits go (at start and after the job), logged
    // one by one and counted; a folder being written (`.tmp-*`) and a symlink planted in done/ stay, and a symlink
    // inside a deleted result is unlinked, never followed.
    func testRetentionDeletesTheOldestBeyondCountAndAge() throws {
        let s = try TempSpool()
        for d in ["done", "failed"] { try FileManager.default.createDirectory(at: s.url(d), withIntermediateDirectories: true) }
        for i in 0..<6 { try result(s, "done", "r\(i)", age: Double(1000 - i * 100)) }
        try result(s, "done", ".tmp-busy", age: 5000)
        let outside = s.url("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: outside.appendingPathComponent("precious.txt"))
        XCTAssertEqual(symlink(outside.path, s.url("done/r0/escape").path), 0)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -1000)], ofItemAtPath: s.url("done/r0").path)
        // `.tmp-busy` is an output being written for work/busy (a live job), so start-up's stale-output sweep keeps it.
        try FileManager.default.createDirectory(at: s.url("work/busy"), withIntermediateDirectories: true)
        XCTAssertEqual(symlink(outside.path, s.url("done/planted").path), 0)
        try result(s, "failed", "f-old", age: 40 * 86_400)
        try result(s, "failed", "f-new", age: 29 * 86_400)
        try s.dropGoodJob("fresh")
        let promPath = s.url("dmilo.prom").path
        let cfg = try config(s, #", "metrics_file": "\#(promPath)", "retention": {"done_max_jobs": 3, "failed_max_age_days": 30}"#)
        let r = try DaemonProcess.run(["--config", cfg, "--once", "--test-runner", "sleep:1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        // 6 old + fresh = 7 results, 3 kept: r0-r2 go at start, r3 after the job.
        XCTAssertEqual(s.list("done"), [".tmp-busy", "fresh", "planted", "r4", "r5"], r.stderr)
        XCTAssertEqual(s.list("failed"), ["f-new"])
        XCTAssertEqual(try String(contentsOf: outside.appendingPathComponent("precious.txt"), encoding: .utf8), "keep")
        for (folder, name, why) in [
            ("done", "r0", "beyond done_max_jobs 3"), ("done", "r3", "beyond done_max_jobs 3"),
            ("failed", "f-old", "older than failed_max_age_days 30"),
        ] {
            XCTAssertTrue(r.stderr.contains("retention: deleted \(folder)/\(name) (\(why))"), r.stderr)
        }
        XCTAssertEqual(r.stderr.components(separatedBy: "retention: deleted").count - 1, 5, r.stderr)
        let text = prom(promPath)
        XCTAssertTrue(text.contains("dmilo_retention_deleted_total{folder=\"done\"} 4\n"), text)
        XCTAssertTrue(text.contains("dmilo_retention_deleted_total{folder=\"failed\"} 1\n"), text)

        // Without `retention` nothing is deleted (as before the key existed).
        for i in 0..<4 { try result(s, "done", "more\(i)", age: 1e6) }
        let r2 = try DaemonProcess.run(["--spool", s.path, "--once", "--test-runner", "sleep:1"])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(s.visible("done").count, 8)
    }

    // A retention value that is negative, fractional, a string or 0, or an unknown retention key, stops the daemon
    // at start with one line naming the field.
    func testRetentionConfigIsValidatedAtStart() throws {
        let s = try TempSpool()
        for (value, field) in [
            (#"{"done_max_jobs": -1}"#, "retention.done_max_jobs"), (#"{"done_max_age_days": 1.5}"#, "retention.done_max_age_days"),
            (#"{"failed_max_jobs": "3"}"#, "retention.failed_max_jobs"), (#"{"failed_max_age_days": 0}"#, "retention.failed_max_age_days"),
            (#"{"done_max_days": 3}"#, "retention.done_max_days"), (#"[1]"#, "`retention` must be an object"),
        ] {
            let r = try DaemonProcess.run(["--config", try config(s, #", "retention": \#(value)"#), "--once", "--test-runner", "sleep:1"])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("<3>dmilod: error: config") && r.stderr.contains(field), "\(value): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        let ok = try DaemonConfig.parse(Data(#"{"retention": {"done_max_jobs": 5, "failed_max_age_days": 2}}"#.utf8), file: "c.json")
        XCTAssertEqual(ok.retention, RetentionPolicy(doneMaxJobs: 5, failedMaxAgeDays: 2))
        XCTAssertTrue(try DaemonConfig.parse(Data("{}".utf8), file: "c.json").retention.isEmpty)
    }

    // Config `models`: `default` is required (or `model`), names are checked, `model` and `models.default` are one
    // thing given once; the old single `model` key still means the default.
    func testModelsConfig() throws {
        func parse(_ s: String) throws -> DaemonConfig { try DaemonConfig.parse(Data(s.utf8), file: "c.json") }
        let old = try parse(#"{"model": "/m/a.gguf"}"#)
        XCTAssertEqual(old.modelPaths, ["default": "/m/a.gguf"])
        let named = try parse(#"{"models": {"default": "/m/a.gguf", "q8": "/m/b.gguf"}}"#)
        XCTAssertEqual(named.model, "/m/a.gguf")
        XCTAssertEqual(named.modelPath(named: "q8"), "/m/b.gguf")
        XCTAssertEqual(named.modelPath(named: nil), "/m/a.gguf")
        XCTAssertNil(named.modelPath(named: "nope"))
        XCTAssertEqual(try parse(#"{"model": "/m/a.gguf", "models": {"q8": "/m/b.gguf"}}"#).modelPaths, ["default": "/m/a.gguf", "q8": "/m/b.gguf"])
        for (bad, words) in [
            (#"{"models": {"q8": "/m/b.gguf"}}"#, "needs a `default`"),
            (#"{"model": "/a", "models": {"default": "/b"}}"#, "give it once"),
            (#"{"models": {"default": "/a", "bad name": "/b"}}"#, "bad name"),
            (#"{"models": {"default": 3}}"#, "models.default"),
            (#"{"models": {}}"#, "non-empty object"),
        ] {
            XCTAssertThrowsError(try parse(bad), bad) { XCTAssertTrue("\($0)".contains(words), "\($0)") }
        }
    }

    // Metrics file: duration and evaluation histograms, failures by code, queue length and last success; `--once`
    // exits 1 because a job failed. A manifest naming an unconfigured model fails with model.unknown (field model)
    // and one naming a configured model runs.
    func testMetricsFileAndOnceExitStatusAndUnknownModel() throws {
        let s = try TempSpool()
        try s.dropGoodJob("g1")
        try s.dropGoodJob("g2", extra: #", "model": "second""#)
        try s.dropGoodJob("nomodel", extra: #", "model": "nope""#)
        try s.drop("bad.json", Data(#"{"version": 1, "measurement": "bad.npy", "operator": {"type": "denoise"}, "colour": 1}"#.utf8))
        let promPath = s.url("dmilo.prom").path
        let started = Date().timeIntervalSince1970
        let cfg = try config(s, #", "metrics_file": "\#(promPath)", "models": {"default": "/m/a", "second": "/m/b"}"#)
        let r = try DaemonProcess.run(["--config", cfg, "--once", "--test-runner", "sleep:1"])
        XCTAssertEqual(r.status, 1, "--once exits 1 when a job failed\n" + r.stderr)
        XCTAssertEqual(s.visible("done"), ["g1", "g2"], r.stderr)
        let e = try XCTUnwrap(s.errorJSON("nomodel"))
        XCTAssertEqual(e["error"] as? String, "model.unknown")
        XCTAssertEqual(e["field"] as? String, "model")
        XCTAssertTrue((e["message"] as? String ?? "").contains("`nope` is not configured (configured: default, second)"), "\(e)")
        let text = prom(promPath)
        for line in [
            "dmilo_job_duration_seconds_count{status=\"done\"} 2", "dmilo_job_duration_seconds_count{status=\"failed\"} 2",
            "dmilo_job_duration_seconds_bucket{status=\"done\",le=\"+Inf\"} 2", "dmilo_job_unet_evaluations_count 2",
            "dmilo_job_unet_evaluations_bucket{le=\"0\"} 2", "dmilo_job_failures_total{code=\"manifest.invalid\"} 1",
            "dmilo_job_failures_total{code=\"model.unknown\"} 1", "dmilo_queue_length 0",
            "# TYPE dmilo_job_duration_seconds histogram", "# TYPE dmilo_job_failures_total counter",
        ] {
            XCTAssertTrue(text.contains(line + "\n"), "\(line) missing in\n\(text)")
        }
        let last = text.split(separator: "\n").first { $0.hasPrefix("dmilo_last_success_timestamp_seconds ") }
        let t = try XCTUnwrap(last.flatMap { Double($0.split(separator: " ")[1]) }, text)
        XCTAssertTrue(t >= started && t <= Date().timeIntervalSince1970, "\(t)")

        // Nothing to do, or only successes: exit 0.
        let empty = try TempSpool()
        XCTAssertEqual(try DaemonProcess.run(["--spool", empty.path, "--once", "--test-runner", "sleep:1"]).status, 0)
        try empty.dropGoodJob("ok")
        XCTAssertEqual(try DaemonProcess.run(["--spool", empty.path, "--once", "--test-runner", "sleep:1"]).status, 0)
    }

    // Histogram buckets are cumulative, with _sum and _count; every sample line has its TYPE.
    func testMetricsHistogramsAreCumulative() throws {
        let s = try TempSpool()
        let m = MetricsFile(path: s.url("m.prom").path)
        m.record(status: "done", duration: 0.5, peakRSS: 1, unetEvaluations: 40)
        m.record(status: "done", duration: 10, peakRSS: 1, unetEvaluations: 495)
        m.record(status: "done", duration: 100, peakRSS: 1, unetEvaluations: 2000)
        m.record(status: "failed", duration: 0.1, peakRSS: 1, errorCode: "file.missing")
        let text = try String(contentsOfFile: s.url("m.prom").path, encoding: .utf8)
        for line in [
            "dmilo_job_duration_seconds_bucket{status=\"done\",le=\"1\"} 1", "dmilo_job_duration_seconds_bucket{status=\"done\",le=\"5\"} 1",
            "dmilo_job_duration_seconds_bucket{status=\"done\",le=\"15\"} 2", "dmilo_job_duration_seconds_bucket{status=\"done\",le=\"120\"} 3",
            "dmilo_job_duration_seconds_sum{status=\"done\"} 110.5", "dmilo_job_duration_seconds_count{status=\"failed\"} 1",
            "dmilo_job_unet_evaluations_bucket{le=\"50\"} 1", "dmilo_job_unet_evaluations_bucket{le=\"500\"} 2",
            "dmilo_job_unet_evaluations_bucket{le=\"1000\"} 2", "dmilo_job_unet_evaluations_bucket{le=\"2000\"} 3",
            "dmilo_job_unet_evaluations_sum 2535.0", "dmilo_job_failures_total{code=\"file.missing\"} 1",
        ] {
            XCTAssertTrue(text.contains(line + "\n"), "\(line) missing in\n\(text)")
        }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            var name = String(line.prefix { $0 != "{" && $0 != " " })
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !text.contains("# TYPE \(name) ") {
                name = String(name.dropLast(suffix.count))
            }
            XCTAssertTrue(text.contains("# TYPE \(name) "), name)
        }
    }

    // An unusable metrics path (missing folder): one warning, STATUS= says so and ERRNO= carries ENOENT, READY=1 is
    // still sent and jobs are still served.
    func testUnusableMetricsPathShowsInStatusAndJobsRun() throws {
        let s = try TempSpool()
        let sock = s.url("notify.sock").path
        let listener = try NotifyListener(path: sock)
        let d = try DaemonProcess(
            [
                "--config", try config(s, #", "metrics_file": "\#(s.path)/no-such-dir/dmilo.prom""#),
                "--test-runner", "sleep:1",
            ], environment: ["NOTIFY_SOCKET": sock])
        try s.dropGoodJob("served")
        XCTAssertTrue(waitUntil(timeout: 20) { s.visible("done") == ["served"] }, d.stderr)
        listener.drain(0.5)
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0, d.stderr)
        listener.drain(0.2)
        let texts = listener.messages.map(\.text)
        XCTAssertTrue(texts.contains("READY=1"), "\(texts)")
        XCTAssertTrue(texts.contains("ERRNO=\(ENOENT)"), "\(texts)")
        let status = texts.filter { $0.hasPrefix("STATUS=") }
        XCTAssertTrue(status.first?.hasPrefix("STATUS=metrics file unusable: cannot create \(s.path)/no-such-dir/") ?? false, "\(status)")
        XCTAssertTrue(status.contains { $0.contains("metrics file unusable") && $0.contains("done 1") }, "\(status)")
        XCTAssertEqual(d.stderr.components(separatedBy: "cannot write metrics file").count - 1, 1, d.stderr)
    }

    // The journal entry's fields: MESSAGE (the readable line), PRIORITY, SYSLOG_IDENTIFIER, then the metadata keys
    // that are journal field names, values unescaped.
    func testJournalFieldList() {
        let f = JournalLogHandler.journalFields(
            level: .warning, message: "job failed → failed/a: bad",
            metadata: [
                "JOB": "a", "ERROR_CODE": "file.missing", "WALL_SECONDS": "0.012",
                "lower": "x", "_PID": "1", "METHOD": "dmilo pgd",
            ])
        XCTAssertEqual(
            f,
            [
                "MESSAGE=job failed → failed/a: bad ERROR_CODE=file.missing JOB=a METHOD=\"dmilo pgd\" WALL_SECONDS=0.012 _PID=1 lower=x",
                "PRIORITY=4", "SYSLOG_IDENTIFIER=dmilod",
                "ERROR_CODE=file.missing", "JOB=a", "METHOD=dmilo pgd", "WALL_SECONDS=0.012",
            ])
        XCTAssertEqual(
            JournalLogHandler.journalFields(level: .info, message: "x\ny", metadata: ["JOB": "n\nm"]),
            ["MESSAGE=x\\x0ay JOB=n\\x0am", "PRIORITY=6", "SYSLOG_IDENTIFIER=dmilod", "JOB=n\nm"])
        XCTAssertFalse(JournalLogHandler.stderrIsJournal(nil))
        XCTAssertFalse(JournalLogHandler.stderrIsJournal("1:2"))
        XCTAssertFalse(JournalLogHandler.stderrIsJournal("garbage"))
    }
}
