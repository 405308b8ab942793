import DMiloJobs
import Foundation
import Logging
import XCTest

@testable import DMiloSpool

#if canImport(Glibc)
import Glibc
#endif

/// In-process tests of the spool protocol pieces (claims, publication recovery, config, log and metrics formats).
final class SpoolUnitTests: XCTestCase {
    func testConcurrentClaimersGetEachJobExactlyOnce() throws {
        let s = try TempSpool()
        let a = Spool(root: s.root), b = Spool(root: s.root)
        try a.prepare()
        for i in 0..<40 { try s.dropGoodJob("c\(i)") }
        let candidates = a.scanIncoming(maxManifestBytes: 1 << 20)
        XCTAssertEqual(candidates.count, 40)
        let claimed = LockedList()
        // Eight threads over two Spool instances race for the same candidates (flock and rename are per open file / path).
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            let spool = t % 2 == 0 ? a : b
            for c in (t % 3 == 0 ? candidates.reversed() : candidates) {
                if let job = spool.claim(c) { claimed.append(job) }
            }
        }
        let names = claimed.items.map(\.name).sorted()
        XCTAssertEqual(names, candidates.map(\.name).sorted())
        XCTAssertEqual(s.visible("work").count, 40, "one work folder per job, losers cleaned up: \(s.list("work"))")
        for job in claimed.items {
            XCTAssertEqual(Set(job.files), ["\(job.name).json", "\(job.name).npy"])
        }
        XCTAssertEqual(s.visible("incoming"), [])
        // Held locks: nobody else sees them as orphans.
        XCTAssertTrue(b.orphans().isEmpty)
        claimed.items.forEach { a.release($0) }
        XCTAssertEqual(b.orphans().count, 40)
    }

    /// Crash after `.final` but before the output folder was renamed: recovery completes the publication.
    func testPublicationInterruptedBeforeRenameIsCompleted() throws {
        let s = try TempSpool()
        let spool = Spool(root: s.root)
        try spool.prepare()
        try s.dropGoodJob("p")
        let job = try XCTUnwrap(spool.claim(spool.scanIncoming(maxManifestBytes: 1 << 20)[0]))
        let out = try spool.outputFolder(for: job, failed: false)
        try Data("r".utf8).write(to: URL(fileURLWithPath: "\(out)/result.txt"))
        try Data("done".utf8).write(to: URL(fileURLWithPath: "\(job.path)/.final"))
        XCTAssertEqual(rename("\(job.path)/p.npy", "\(out)/p.npy"), 0)  // half the inputs moved, then "crash"
        spool.release(job)
        let orphans = spool.orphans()
        guard orphans.count == 1, case .publishing(let j, let parent) = orphans[0] else { return XCTFail("\(orphans)") }
        XCTAssertEqual(parent, "done")
        let final = try spool.publish(j, failed: false)
        XCTAssertEqual(final, s.url("done/p").path)
        XCTAssertEqual(s.list("done/p"), ["p.json", "p.npy", "result.txt"])
        XCTAssertEqual(s.list("work"), [])
        XCTAssertEqual(s.list("done"), ["p"])
    }

    /// Crash after the rename but before `work/` was cleaned: recovery only cleans up (no NAME.1 duplicate).
    func testPublicationInterruptedAfterRenameOnlyCleansUp() throws {
        let s = try TempSpool()
        let spool = Spool(root: s.root)
        try spool.prepare()
        try s.dropGoodJob("q")
        let job = try XCTUnwrap(spool.claim(spool.scanIncoming(maxManifestBytes: 1 << 20)[0]))
        let out = try spool.outputFolder(for: job, failed: false)
        try Data("done".utf8).write(to: URL(fileURLWithPath: "\(job.path)/.final"))
        for f in job.files { XCTAssertEqual(rename("\(job.path)/\(f)", "\(out)/\(f)"), 0) }
        XCTAssertEqual(rename(out, s.url("done/q").path), 0)
        spool.release(job)
        guard case .publishing(let j, _)? = spool.orphans().first else { return XCTFail() }
        _ = try spool.publish(j, failed: false)
        XCTAssertEqual(s.list("done"), ["q"])
        XCTAssertEqual(s.list("done/q"), ["q.json", "q.npy"])
        XCTAssertEqual(s.list("work"), [])
    }

    func testSameNameTwiceNeverOverwrites() throws {
        let s = try TempSpool()
        let spool = Spool(root: s.root)
        try spool.prepare()
        for round in 0..<3 {
            try s.dropGoodJob("same")
            let job = try XCTUnwrap(spool.claim(spool.scanIncoming(maxManifestBytes: 1 << 20)[0]))
            let out = try spool.outputFolder(for: job, failed: false)
            try Data("\(round)".utf8).write(to: URL(fileURLWithPath: "\(out)/round.txt"))
            _ = try spool.publish(job, failed: false)
        }
        XCTAssertEqual(s.list("done"), ["same", "same.1", "same.2"])
        XCTAssertEqual(try String(contentsOf: s.url("done/same/round.txt"), encoding: .utf8), "0")
        XCTAssertEqual(try String(contentsOf: s.url("done/same.2/round.txt"), encoding: .utf8), "2")
    }

    func testInputNamedLikeAnOutputIsKeptBesideIt() throws {
        let s = try TempSpool()
        let spool = Spool(root: s.root)
        try spool.prepare()
        try s.drop("metrics.npy", TempSpool.npy)
        try s.drop("m.json", Data(#"{"version": 1, "measurement": "metrics.npy", "operator": {"type": "denoise"}}"#.utf8))
        let job = try XCTUnwrap(spool.claim(spool.scanIncoming(maxManifestBytes: 1 << 20)[0]))
        let out = try spool.outputFolder(for: job, failed: false)
        try Data("out".utf8).write(to: URL(fileURLWithPath: "\(out)/metrics.npy"))
        _ = try spool.publish(job, failed: false)
        XCTAssertEqual(s.list("done/m"), ["input.metrics.npy", "m.json", "metrics.npy"])
    }

    func testDeadClaimWithoutManifestIsRemovedButLiveOneIsNot() throws {
        let s = try TempSpool()
        let spool = Spool(root: s.root)
        try spool.prepare()
        // A claim that died after mkdir + lock, before the rename.
        XCTAssertEqual(mkdir(s.url("work/dead").path, 0o750), 0)
        FileManager.default.createFile(atPath: s.url("work/dead/.lock").path, contents: nil)
        // A fresh folder without a lock yet (a live claimer between mkdir and flock) is left alone.
        XCTAssertEqual(mkdir(s.url("work/young").path, 0o750), 0)
        XCTAssertTrue(spool.orphans().isEmpty)
        XCTAssertEqual(s.visible("work"), ["young"])
    }

    func testSpoolPrepareCreatesFoldersAndRejectsBadRoots() throws {
        let s = try TempSpool()
        try Spool(root: s.root).prepare()
        XCTAssertEqual(s.list(""), ["calibration", "cancel", "done", "failed", "incoming", "tmp", "work"])
        XCTAssertThrowsError(try Spool(root: s.url("nope")).prepare())
        try Data().write(to: s.url("file"))
        XCTAssertThrowsError(try Spool(root: s.url("file")).prepare())
    }

    func testConfigParsingIsStrictAndMergesSolverDefaults() throws {
        let c = try DaemonConfig.parse(
            Data(
                #"""
                {"spool": "/s", "model": "/m.gguf", "threads": 2, "memory_budget_mb": 512, "jobs": 2, "max_budget": 100,
                 "attempts": 5, "watchdog": false, "metrics_file": "/x.prom", "rescan_seconds": 1.5,
                 "missing_file_grace_seconds": 10, "max_file_mb": 8, "max_manifest_kb": 64, "log_level": "debug",
                 "solver_defaults": {"*": {"method": "dmilo", "steps": 3}, "inpainting": {"method": "dmilo-pgd", "budget": 500}}}
                """#.utf8), file: "c.json")
        XCTAssertEqual(c.spool, "/s"); XCTAssertEqual(c.jobs, 2); XCTAssertEqual(c.attempts, 5); XCTAssertFalse(c.watchdog)
        XCTAssertEqual(c.rescanSeconds, 1.5); XCTAssertEqual(c.maxFileMB, 8); XCTAssertEqual(c.logLevel, "debug")
        let m = try Manifest.parse(Data(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "box": [0, 0, 4, 4]}, "solver": {"outer": 7}}"#.utf8), file: "j.json")
        let js = c.jobSettings(for: m)
        XCTAssertEqual(js.solver.method, "dmilo-pgd", "operator default beats *")
        XCTAssertEqual(js.solver.steps, 3, "* default fills gaps")
        XCTAssertEqual(js.solver.outer, 7, "manifest wins")
        XCTAssertEqual(js.maxBudget, 100)
        XCTAssertEqual(
            try js.solver.parameters(operatorType: "inpainting", maxBudget: js.maxBudget, seed: 0).budget, 100,
            "budget capped at max_budget")
        XCTAssertEqual(js.maxFileBytes, 8 << 20)
        for bad in [
            #"{"treads": 1}"#, #"{"jobs": 0}"#, #"{"jobs": "2"}"#, #"{"watchdog": 1}"#, #"{"log_level": "loud"}"#,
            #"{"solver_defaults": {"xray": {}}}"#, #"{"solver_defaults": {"*": {"stpes": 1}}}"#, "[]", "nope",
        ] {
            XCTAssertThrowsError(try DaemonConfig.parse(Data(bad.utf8), file: "c.json"), bad) { e in
                XCTAssertTrue("\(e)".contains("c.json"), "\(e)")
            }
        }
        // The shipped example config parses.
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Systemd/dmilod.json")
        XCTAssertNoThrow(try DaemonConfig.load(path: example.path))
    }

    func testJournalLineFormat() {
        XCTAssertEqual(
            JournalLogHandler.format(level: .warning, message: "job failed", metadata: ["JOB": "a", "ERROR": "file.missing"]),
            "<4>job failed ERROR=file.missing JOB=a\n")
        XCTAssertEqual(JournalLogHandler.format(level: .info, message: "two\nlines", metadata: ["M": "x y"]), "<6>two\\x0alines M=\"x y\"\n")
        // A client's job name cannot end the line, start one at another priority or hide in a quoted value.
        XCTAssertEqual(
            JournalLogHandler.format(level: .warning, message: "job failed", metadata: ["JOB": "x\n<0>FORGED\r\u{1b}[2J\"q\\"]),
            "<4>job failed JOB=\"x\\x0a<0>FORGED\\x0d\\x1b[2J\\x22q\\x5c\"\n")
        XCTAssertEqual(JournalLogHandler.escaped("a\u{2028}b\u{85}c\u{7f}"), "a\\u{2028}b\\u{0085}c\\x7f")
        XCTAssertEqual(JournalLogHandler.format(level: .error, message: "e", metadata: [:]), "<3>e\n")
        XCTAssertEqual(JournalLogHandler.format(level: .debug, message: "d", metadata: [:]), "<7>d\n")
    }

    func testMetricsTextfileFormat() throws {
        let s = try TempSpool()
        let path = s.url("m.prom").path
        let m = MetricsFile(path: path)
        m.setQueue(3)
        var text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.contains("dmilo_queue_length 3\n"))
        XCTAssertFalse(text.contains("dmilo_last_success_timestamp_seconds"), "no sample before the first success")
        m.record(status: "failed", duration: 1.5, peakRSS: 1000)
        m.record(status: "done", duration: 2.5, peakRSS: 2000)
        text = try String(contentsOfFile: path, encoding: .utf8)
        for line in [
            "dmilo_jobs_total{status=\"done\"} 1", "dmilo_jobs_total{status=\"failed\"} 1", "dmilo_last_job_duration_seconds 2.5",
            "dmilo_last_job_peak_rss_bytes 2000", "# TYPE dmilo_queue_length gauge",
        ] {
            XCTAssertTrue(text.contains(line + "\n"), line)
        }
        // Every sample line is `name{labels} value` with a HELP/TYPE for its name (a histogram's for its series).
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
            var name = String(line.prefix { $0 != "{" && $0 != " " })
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !text.contains("# TYPE \(name) ") {
                name = String(name.dropLast(suffix.count))
                XCTAssertTrue(text.contains("# TYPE \(name) histogram"), name)
            }
            XCTAssertTrue(text.contains("# TYPE \(name) "), name)
            XCTAssertNotNil(Double(line.split(separator: " ").last ?? ""), String(line))
        }
        XCTAssertEqual(s.list("").filter { $0.contains(".tmp") }, [], "temp file renamed away")
        XCTAssertGreaterThan(MetricsFile.peakRSSBytes(), 1 << 20)
    }

    func testPeakRSSResetGivesPerJobPeaks() {
        do {
            let big = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 << 20, alignment: 64)
            defer { big.deallocate() }
            for i in stride(from: 0, to: big.count, by: 4096) { big[i] = 1 }
        }
        let before = MetricsFile.peakRSSBytes()
        XCTAssertGreaterThan(before, 128 << 20)
        MetricsFile.resetPeakRSS()
        XCTAssertLessThan(MetricsFile.peakRSSBytes(), before - (96 << 20), "VmHWM not reset")
    }

    func testSystemdUnitVerifies() throws {
        let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let analyze else { throw XCTSkip("systemd-analyze not installed; unit not verified") }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let unit = try String(contentsOf: repo.appendingPathComponent("Systemd/dmilod.service"), encoding: .utf8)
        XCTAssertTrue(unit.contains("Type=notify") && unit.contains("WatchdogSec=") && unit.contains("NotifyAccess=main"))
        // verify needs ExecStart's binary to exist: point it at the built dmilod (or any executable).
        let exe = DaemonBinary.path ?? "/bin/true"
        let s = try TempSpool()
        let path = s.url("dmilod.service")
        try unit.replacingOccurrences(of: "/usr/local/bin/dmilod", with: exe).write(to: path, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: analyze)
        p.arguments = ["verify", path.path]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = err
        try p.run()
        let out = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, out)
        // systemd only warns about unknown keys and bad values, so any output at all is a failure.
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines), "", out)
    }
}

final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var v: [Spool.WorkJob] = []
    func append(_ j: Spool.WorkJob) { lock.lock(); v.append(j); lock.unlock() }
    var items: [Spool.WorkJob] { lock.lock(); defer { lock.unlock() }; return v }
}

final class InstallTests: XCTestCase {
    /// `make install-files` (the copy step of `make install`) stages binary, unit, sysusers, tmpfiles, config,
    /// schema and docs with PREFIX substituted; the installed unit passes `systemd-analyze verify`.
    func testMakeInstallFilesStagesEverything() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/make") else { throw XCTSkip("make not installed") }
        guard let exe = DaemonBinary.path else { throw XCTSkip("dmilod not built") }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let s = try TempSpool()
        let stage = s.url("stage").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/make")
        p.currentDirectoryURL = repo
        // DESTDIR empty and PREFIX inside the temp folder, so the unit's ExecStart names a file that exists.
        p.arguments = [
            "-s", "install-files", "BIN=\((exe as NSString).deletingLastPathComponent)", "BINARIES=dmilod",
            "PREFIX=\(stage)/usr", "SYSCONFDIR=\(stage)/etc", "UNITDIR=\(stage)/units",
            "SYSUSERSDIR=\(stage)/sysusers", "TMPFILESDIR=\(stage)/tmpfiles", "MODEL=", "DESTDIR=",
        ]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let log = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, log)
        for f in [
            "usr/bin/dmilod", "units/dmilod.service", "sysusers/dmilo.conf", "tmpfiles/dmilo.conf", "etc/dmilo/dmilod.json",
            "usr/share/dmilo/manifest.schema.json", "usr/share/doc/dmilo/dmilod.md",
        ] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(stage)/\(f)"), f)
        }
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: "\(stage)/usr/bin/dmilod"))
        let unit = try String(contentsOfFile: "\(stage)/units/dmilod.service", encoding: .utf8)
        XCTAssertTrue(unit.contains("ExecStart=\(stage)/usr/bin/dmilod --config \(stage)/etc/dmilo/dmilod.json"), unit)
        let config = try DaemonConfig.load(path: "\(stage)/etc/dmilo/dmilod.json")
        XCTAssertEqual(config.model, "\(stage)/usr/share/dmilo/model.gguf")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") {
            let v = Process()
            v.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
            v.arguments = ["verify", "\(stage)/units/dmilod.service"]
            let o = Pipe()
            v.standardOutput = o
            v.standardError = o
            try v.run()
            let text = String(decoding: o.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            v.waitUntilExit()
            XCTAssertEqual(v.terminationStatus, 0, text)
            XCTAssertEqual(text.trimmingCharacters(in: .whitespacesAndNewlines), "", text)
        }
        // A second install keeps the operator's edited config.
        try Data("{\"jobs\": 3}".utf8).write(to: URL(fileURLWithPath: "\(stage)/etc/dmilo/dmilod.json"))
        let again = Process()
        again.executableURL = p.executableURL
        again.currentDirectoryURL = repo
        again.arguments = p.arguments
        again.standardOutput = FileHandle.nullDevice
        try again.run()
        again.waitUntilExit()
        XCTAssertEqual(try String(contentsOfFile: "\(stage)/etc/dmilo/dmilod.json", encoding: .utf8), "{\"jobs\": 3}")
    }
}

final class SystemdSnippetTests: XCTestCase {
    func run(_ exe: String, _ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let o = Pipe()
        p.standardOutput = o
        p.standardError = o
        try p.run()
        let text = String(decoding: o.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// sysusers creates user+group dmilo; tmpfiles creates the spool with setgid, group-writable incoming/ and tmp/.
    func testSysusersAndTmpfilesCreateTheSpool() throws {
        let tools = ["/usr/bin/systemd-sysusers", "/usr/bin/systemd-tmpfiles"]
        guard tools.allSatisfy({ FileManager.default.isExecutableFile(atPath: $0) }) else { throw XCTSkip("systemd tools not installed") }
        guard getuid() == 0 else { throw XCTSkip("tmpfiles --root needs root to chown") }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let s = try TempSpool()
        let root = s.url("root").path
        try FileManager.default.createDirectory(atPath: "\(root)/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(root)/usr/lib/tmpfiles.d", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(root)/etc/passwd", contents: nil)
        FileManager.default.createFile(atPath: "\(root)/etc/group", contents: nil)
        let (rc1, out1) = try run(tools[0], ["--root=\(root)", repo.appendingPathComponent("Systemd/dmilo.sysusers").path])
        XCTAssertEqual(rc1, 0, out1)
        let passwd = try String(contentsOfFile: "\(root)/etc/passwd", encoding: .utf8)
        let group = try String(contentsOfFile: "\(root)/etc/group", encoding: .utf8)
        XCTAssertTrue(passwd.hasPrefix("dmilo:x:"), passwd)
        XCTAssertTrue(passwd.contains("/usr/sbin/nologin"))
        XCTAssertTrue(group.hasPrefix("dmilo:x:"), group)
        try FileManager.default.copyItem(
            at: repo.appendingPathComponent("Systemd/dmilo.tmpfiles"),
            to: URL(fileURLWithPath: "\(root)/usr/lib/tmpfiles.d/dmilo.conf"))
        let (rc2, out2) = try run(tools[1], ["--root=\(root)", "--create", "dmilo.conf"])
        XCTAssertEqual(rc2, 0, out2)
        func mode(_ rel: String) -> mode_t {
            var st = stat()
            XCTAssertEqual(stat("\(root)/var/spool/dmilo/\(rel)", &st), 0, rel)
            return st.st_mode & 0o7777
        }
        XCTAssertEqual(mode("incoming"), 0o2770)
        XCTAssertEqual(mode("tmp"), 0o2770)
        XCTAssertEqual(mode("done"), 0o2750)
        XCTAssertEqual(mode("work"), 0o2750)
        XCTAssertEqual(mode("calibration"), 0o2755)
        XCTAssertEqual(mode(""), 0o2750)
    }
}
