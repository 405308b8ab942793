import DMiloJobs
import Foundation
import XCTest

@testable import DMiloSpool

#if canImport(Glibc)
import Glibc
#endif

/// Regression tests for issue 16 (hostile input, crashes, a full disk), each through the real binaries:
/// `dmilod-test` (the daemon with a model-free runner) and, where the model matters, the product `dmilod`.
final class HardeningTests: XCTestCase {
    func config(_ s: TempSpool, _ extra: String = "") throws -> String {
        let path = s.url("dmilod.json").path
        try Data(#"{"rescan_seconds": 0.2, "missing_file_grace_seconds": 0.3, "settle_seconds": 0.5\#(extra)}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        return path
    }

    // Item 3: a job that aborts (as an out-of-memory abort would) beside healthy ones with jobs: 2 takes only itself
    // down: the healthy jobs are done, the daemon keeps running, the crashing one ends job.crashed.
    func testCrashingJobBesideHealthyOnesTakesOnlyItselfDown() throws {
        let s = try TempSpool()
        try s.dropGoodJob("abort-me")
        for n in ["h1", "h2", "h3", "h4"] { try s.dropGoodJob(n) }
        let d = try DaemonProcess(["--spool", s.path, "--config", try config(s), "--jobs", "2", "--test-runner", "abort:400"])
        XCTAssertTrue(
            waitUntil(timeout: 60) { s.visible("done").count == 4 && s.visible("failed").count == 1 },
            "done=\(s.visible("done")) failed=\(s.visible("failed"))\n\(d.stderr)")
        XCTAssertTrue(d.process.isRunning, "the daemon died with the job:\n\(d.stderr)")
        XCTAssertEqual(s.visible("done"), ["h1", "h2", "h3", "h4"])
        XCTAssertEqual(s.errorJSON("abort-me")?["error"] as? String, "job.crashed")
        XCTAssertEqual(d.stderr.components(separatedBy: "killed by signal 6").count - 1, 3, d.stderr)
        XCTAssertFalse(d.stderr.contains("Backtracing"), "worker crashes are one log line each, not a multi-line backtrace")
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0)
        XCTAssertEqual(s.list("work"), [])
        XCTAssertEqual(s.list("done").filter { $0.hasPrefix(".") } + s.list("failed").filter { $0.hasPrefix(".") }, [])
    }

    // Workers run with the config in force: after a reload that failed (broken file) jobs still run with the old
    // one, and a good reload reaches the next job (here `solver_defaults` picks the method).
    func testWorkersUseTheConfigInForce() throws {
        let s = try TempSpool()
        let cfg = try config(s, #", "solver_defaults": {"*": {"method": "dps"}}"#)
        let d = try DaemonProcess(["--spool", s.path, "--config", cfg, "--test-runner", "sleep:1"])
        XCTAssertTrue(waitUntil(timeout: 10) { d.stderr.contains("dmilod started") })
        try Data("{\"jobs\": 0".utf8).write(to: URL(fileURLWithPath: cfg))
        d.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 10) { d.stderr.contains("reload failed") }, d.stderr)
        try s.dropGoodJob("after-bad-reload")
        XCTAssertTrue(waitUntil(timeout: 20) { s.visible("done") == ["after-bad-reload"] }, "failed=\(s.visible("failed")) \(d.stderr)")
        XCTAssertTrue(try String(contentsOf: s.url("done/after-bad-reload/result.txt"), encoding: .utf8).contains("method=dps"))
        _ = try config(s, #", "solver_defaults": {"*": {"method": "dmplug"}}"#)
        d.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 10) { d.stderr.contains("configuration reloaded") }, d.stderr)
        try s.dropGoodJob("after-good-reload")
        XCTAssertTrue(waitUntil(timeout: 20) { s.visible("done").count == 2 }, d.stderr)
        XCTAssertTrue(try String(contentsOf: s.url("done/after-good-reload/result.txt"), encoding: .utf8).contains("method=dmplug"))
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0)
    }

    // Item 5: a manifest named `x\n<0>FORGED.json` cannot write a journal line of its own (any priority).
    func testJobNamesCannotForgeLogLines() throws {
        let s = try TempSpool()
        try s.drop("x\n<0>FORGED.json", Data(#"{"version": 1, "measurement": "x.npy", "operator": {"type": "denoise"}}"#.utf8))
        try s.drop("y\u{1b}[2J\r<1>ALSO.json", Data("{".utf8))
        let r = try DaemonProcess.run(["--spool", s.path, "--once", "--test-runner", "sleep:1"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(s.visible("failed").count, 2, "\(s.visible("failed"))")
        for line in r.stderr.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            XCTAssertTrue(line.hasPrefix("<3>") || line.hasPrefix("<4>") || line.hasPrefix("<5>") || line.hasPrefix("<6>"), "forged line: \(line)")
            XCTAssertFalse(line.contains("\r") || line.contains("\u{1b}"), "control character in: \(line)")
        }
        XCTAssertTrue(r.stderr.contains(#"x\x0a<0>FORGED"#), r.stderr)
    }

    // Item 6: a client-written `incoming/.NAME.attempts` is ignored; a crashing job still stops after `attempts` runs.
    func testClientCannotForgeTheRetryCounter() throws {
        let s = try TempSpool()
        try s.dropGoodJob("poison")
        try s.drop(".poison.attempts", Data("-1000000\n".utf8))
        let r = try DaemonProcess.run(["--spool", s.path, "--once", "--test-runner", "crash:1"], timeout: 60)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(s.errorJSON("poison")?["error"] as? String, "job.crashed")
        XCTAssertEqual(r.stderr.components(separatedBy: "killed by signal 9").count - 1, 3, r.stderr)
    }

    // Item 7: NaN/Inf results fail with the documented result.nonfinite and a true message.
    func testNonFiniteResultHasItsOwnCode() throws {
        let s = try TempSpool()
        try s.dropGoodJob("nan")
        let r = try DaemonProcess.run(["--spool", s.path, "--once", "--test-runner", "nan:1"])
        XCTAssertEqual(r.status, 1, r.stderr)
        try assertFailed(s, "nan", code: "result.nonfinite", messageContains: "NaN")
    }

    // Item 9: a non-UTF-8 manifest name is failed with a code (not left forever); a manifest written in place is
    // not read half-written; stale data files without a manifest are removed.
    func testOddNamesInPlaceWritesAndStaleFiles() throws {
        let s = try TempSpool()
        var raw = Array(s.url("incoming").path.utf8) + Array("/bad".utf8) + [0xFF] + Array(".json".utf8) + [0]
        let fd = raw.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { open($0, O_WRONLY | O_CREAT, 0o644) }
        }
        XCTAssertGreaterThanOrEqual(fd, 0)
        _ = write(fd, "{}", 2)
        close(fd)
        // A data file no manifest names, unchanged for longer than stale_file_hours (0.36 s here), is removed.
        try s.drop("orphan.npy", TempSpool.npy)
        usleep(1_000_000)
        let d = try DaemonProcess(["--spool", s.path, "--config", try config(s, #", "stale_file_hours": 0.0001"#), "--test-runner", "sleep:1"])
        XCTAssertTrue(waitUntil(timeout: 10) { d.stderr.contains("removed unclaimed data file incoming/orphan.npy") }, d.stderr)
        try s.drop("slow.npy", TempSpool.npy)
        // Written in place, in two halves 0.3 s apart (less than settle_seconds).
        let manifest = Data(#"{"version": 1, "measurement": "slow.npy", "operator": {"type": "denoise"}}"#.utf8)
        let h = try XCTUnwrap(
            FileHandle(
                forWritingAtPath: {
                    FileManager.default.createFile(atPath: s.url("incoming/slow.json").path, contents: nil); return s.url("incoming/slow.json").path
                }()))
        h.write(manifest.prefix(20))
        usleep(300_000)
        h.write(manifest.dropFirst(20))
        try h.close()
        XCTAssertTrue(
            waitUntil(timeout: 20) { s.visible("done") == ["slow"] && s.visible("failed") == ["bad_xff"] },
            "done=\(s.visible("done")) failed=\(s.visible("failed"))\n\(d.stderr)")
        XCTAssertEqual(s.errorJSON("bad_xff")?["error"] as? String, "manifest.invalid")
        XCTAssertEqual(s.list("incoming"), [])
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0)
    }

    // Stale-file removal goes by ctime too: a file copied with its old mtime (`cp -p`, `rsync -t`) and just renamed
    // into incoming/ is not taken for an abandoned one; a file a manifest names is never removed.
    func testStaleFileAgeIgnoresAClientsOldMtime() throws {
        let s = try TempSpool()
        let spool = Spool(root: s.root)
        try spool.prepare()
        try s.drop("copied.npy", TempSpool.npy)
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, s.url("incoming/copied.npy").path, &times, 0), 0)
        XCTAssertEqual(spool.removeStaleFiles(olderThan: 3600, candidates: spool.scanIncoming(maxManifestBytes: 1 << 20)), [])
        try s.dropGoodJob("named")
        XCTAssertEqual(spool.removeStaleFiles(olderThan: -1, candidates: spool.scanIncoming(maxManifestBytes: 1 << 20)), ["copied.npy"])
        XCTAssertEqual(s.list("incoming"), ["named.json", "named.npy"])
    }

    // Item 12: an unwritable metrics_file gives one warning line, not silence and not one per job.
    func testUnwritableMetricsFileIsLoggedOnce() throws {
        let s = try TempSpool()
        for n in ["m1", "m2", "m3"] { try s.dropGoodJob(n) }
        let r = try DaemonProcess.run([
            "--spool", s.path, "--once", "--config",
            try config(s, #", "metrics_file": "/nonexistent-dir/dmilo.prom""#), "--test-runner", "sleep:1",
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(s.visible("done").count, 3)
        XCTAssertEqual(r.stderr.components(separatedBy: "cannot write metrics file /nonexistent-dir/dmilo.prom").count - 1, 1, r.stderr)
    }

    // Item 13: a hard link (to a file outside the spool) is refused like a symlink.
    func testHardLinksAreRefused() throws {
        let s = try TempSpool()
        let outside = s.url("secret.npy")
        try TempSpool.npy.write(to: outside)
        XCTAssertEqual(link(outside.path, s.url("incoming/hl.npy").path), 0)
        try s.drop("hl.json", Data(#"{"version": 1, "measurement": "hl.npy", "operator": {"type": "denoise"}}"#.utf8))
        let r = try DaemonProcess.run(["--spool", s.path, "--once", "--test-runner", "sleep:1"])
        XCTAssertEqual(r.status, 1, r.stderr)
        try assertFailed(s, "hl", code: "file.unreadable", messageContains: "hard link")
    }

    // Item 4 (injected): while writes fail with ENOSPC the jobs stay queued, one log line per state change, the
    // metric says so, nothing is failed and no temporary folder is left; when space is back they are done.
    func testDiskFullIsAStateNotAFailure() throws {
        let s = try TempSpool()
        let prom = s.url("dmilo.prom").path
        for n in ["d1", "d2", "d3"] { try s.dropGoodJob(n) }
        FileManager.default.createFile(atPath: s.url("tmp/FULL").path, contents: nil)
        let d = try DaemonProcess([
            "--spool", s.path, "--config", try config(s, #", "metrics_file": "\#(prom)""#),
            "--test-runner", "diskfull:1",
        ])
        XCTAssertTrue(waitUntil(timeout: 20) { ((try? String(contentsOfFile: prom, encoding: .utf8)) ?? "").contains("dmilo_disk_full 1") }, d.stderr)
        sleep(4)  // several back-off rounds
        XCTAssertEqual(s.visible("failed"), [], d.stderr)
        XCTAssertEqual(s.visible("done"), [])
        XCTAssertEqual(d.stderr.components(separatedBy: "disk full:").count - 1, 1, "one line per state change:\n\(d.stderr)")
        XCTAssertLessThan(d.stderr.split(separator: "\n").count, 40, "no log flood:\n\(d.stderr)")
        try FileManager.default.removeItem(atPath: s.url("tmp/FULL").path)
        XCTAssertTrue(waitUntil(timeout: 30) { s.visible("done") == ["d1", "d2", "d3"] }, d.stderr)
        XCTAssertTrue(d.stderr.contains("disk space available again"), d.stderr)
        XCTAssertTrue(waitUntil(timeout: 5) { ((try? String(contentsOfFile: prom, encoding: .utf8)) ?? "").contains("dmilo_disk_full 0") })
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0)
        XCTAssertEqual(s.list("done").filter { $0.hasPrefix(".") } + s.list("failed").filter { $0.hasPrefix(".") }, [])
    }

    // Item 4 on a real full file system: a 2 MiB tmpfs (needs root and mount; skipped elsewhere).
    func testRealFullTmpfsLeavesJobsQueued() throws {
        let mnt = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("dmilod-tmpfs-\(getpid())")
        try FileManager.default.createDirectory(at: mnt, withIntermediateDirectories: true)
        defer { _ = Self.sh("umount \(mnt.path)"); try? FileManager.default.removeItem(at: mnt) }
        guard getuid() == 0, Self.sh("mount -t tmpfs -o size=2m tmpfs \(mnt.path)") == 0 else {
            throw XCTSkip("cannot mount a tmpfs here (not root or no mount permission)")
        }
        for d in ["incoming", "calibration", "tmp"] { try FileManager.default.createDirectory(at: mnt.appendingPathComponent(d), withIntermediateDirectories: true) }
        let s = TempSpool(existing: mnt)
        for n in (0..<10).map({ "t\($0)" }) { try s.dropGoodJob(n) }
        for d in ["work", "done", "failed"] { try FileManager.default.createDirectory(at: mnt.appendingPathComponent(d), withIntermediateDirectories: true) }
        // Fill what is left.
        let filler = mnt.appendingPathComponent("filler").path
        _ = Self.sh("dd if=/dev/zero of=\(filler) bs=4k 2>/dev/null")
        let outside = try TempSpool()
        let d = try DaemonProcess(["--spool", mnt.path, "--config", try config(outside), "--test-runner", "sleep:1"])
        XCTAssertTrue(waitUntil(timeout: 20) { d.stderr.contains("disk full:") }, d.stderr)
        sleep(3)
        XCTAssertEqual(s.visible("failed"), [], d.stderr)
        XCTAssertLessThan(d.stderr.split(separator: "\n").count, 40, "no log flood:\n\(d.stderr)")
        unlink(filler)
        XCTAssertTrue(waitUntil(timeout: 60) { s.visible("done").count == 10 }, "done=\(s.visible("done"))\n\(d.stderr)")
        d.signal(SIGTERM)
        XCTAssertEqual(d.wait(), 0)
        XCTAssertEqual(s.visible("failed"), [])
        XCTAssertEqual(s.list("done").filter { $0.hasPrefix(".") } + s.list("failed").filter { $0.hasPrefix(".") }, [])
    }

    // Items 1-2: with memory_budget_mb 0 the budget comes from the cgroup (systemd MemoryMax=) or RAM, never "none".
    func testDefaultMemoryBudgetComesFromTheMachine() throws {
        let s = try TempSpool()
        let proc = s.url("proc"), cg = s.url("cgroup")
        try FileManager.default.createDirectory(at: proc.appendingPathComponent("self"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: cg.appendingPathComponent("system.slice/dmilod.service"), withIntermediateDirectories: true)
        try Data("MemTotal:        8000000 kB\nMemFree: 1 kB\n".utf8).write(to: proc.appendingPathComponent("meminfo"))
        try Data("0::/system.slice/dmilod.service\n".utf8).write(to: proc.appendingPathComponent("self/cgroup"))
        try Data("4294967296\n".utf8).write(to: cg.appendingPathComponent("system.slice/dmilod.service/memory.max"))
        try Data("max\n".utf8).write(to: cg.appendingPathComponent("system.slice/memory.max"))
        let limit = MachineMemory.limitBytes(procRoot: proc.path, cgroupRoot: cg.path)
        XCTAssertEqual(limit, 4 << 30)
        XCTAssertEqual(MachineMemory.defaultJobBudgetMB(jobs: 1, limitBytes: limit), 3072)
        XCTAssertEqual(MachineMemory.defaultJobBudgetMB(jobs: 2, limitBytes: limit), 1536)
        // No cgroup limit: RAM.
        try Data("max\n".utf8).write(to: cg.appendingPathComponent("system.slice/dmilod.service/memory.max"))
        XCTAssertEqual(MachineMemory.limitBytes(procRoot: proc.path, cgroupRoot: cg.path), 8_000_000 * 1024)
        // The daemon's job settings never carry "unlimited".
        let manifest = try Manifest.parse(Data(#"{"version": 1, "measurement": "a.npy", "operator": {"type": "denoise"}}"#.utf8), file: "a.json")
        XCTAssertGreaterThanOrEqual(DaemonConfig().jobSettings(for: manifest).memoryBudgetMB, 256)
    }

    static func sh(_ cmd: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", cmd]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    // The test hook is not in the product: `dmilod --test-runner` is an unknown option.
    func testProductHasNoTestRunner() throws {
        let product = try XCTUnwrap(DaemonBinary.product)
        let r = try DaemonProcess.run(["--spool", "/nonexistent", "--test-runner", "sleep:1"], executable: product)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("Unknown option '--test-runner'"), r.stderr)
    }

    // Items 1, 2, 7, 13 with the real model and the product binary: a DMPlug memory bomb is refused up front
    // (memory.budget), a step count that would wrap is refused (manifest.invalid), a small PNG claiming a huge
    // image is image.too_large, a model with NaN weights gives result.nonfinite; a normal job is done.
    func testProductRefusesMemoryBombsAndNonFiniteResults() throws {
        let product = try XCTUnwrap(DaemonBinary.product)
        let model = DaemonBinary.repo.appendingPathComponent("Models/fashion-mnist-32").path
        guard FileManager.default.fileExists(atPath: model) else { throw XCTSkip("no bundled model") }
        let s = try TempSpool()
        // A (1, 32, 32) float32 measurement of 0.1s.
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 32, 32), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        var npy = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count + 1), 0]) + Data((header + "\n").utf8)
        for _ in 0..<1024 { var v: Float = 0.1; npy.append(Data(bytes: &v, count: 4)) }
        func job(_ name: String, _ extra: String, measurement: String? = nil) throws {
            let m = measurement ?? "\(name).npy"
            if measurement == nil { try s.drop(m, npy) }
            try s.drop("\(name).json", Data(#"{"version": 1, "measurement": "\#(m)", "operator": {"type": "denoise"}\#(extra)}"#.utf8))
        }
        try job("bomb", #", "solver": {"method": "dmplug", "steps": 300, "budget": 600}"#)
        try job("wrap", #", "solver": {"method": "dmplug", "steps": 870058519462}"#)
        try job("ok", #", "solver": {"method": "dmilo", "steps": 2, "outer": 1, "inner": 1}"#)
        // An all-zero 8192x8192 gray PNG compresses to a few tens of KB.
        try s.drop("big.png", Self.zeroPNG(width: 8192, height: 8192))
        try job("bigpng", "", measurement: "big.png")
        let r = try DaemonProcess.run(
            ["--spool", s.path, "--model", model, "--once", "--threads", "1", "--memory-budget", "512"],
            timeout: 300, executable: product)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(s.visible("done"), ["ok"], r.stderr)
        XCTAssertEqual(s.errorJSON("bomb")?["error"] as? String, "memory.budget", "\(String(describing: s.errorJSON("bomb")))")
        XCTAssertEqual(s.errorJSON("wrap")?["error"] as? String, "manifest.invalid")
        XCTAssertEqual(s.errorJSON("wrap")?["field"] as? String, "solver.steps")

        // A model whose last convolution holds NaN weights: the job fails with result.nonfinite (it used to be
        // output.unwritable with a message about writing files).
        let nanModel = s.url("nan-model")
        try FileManager.default.createDirectory(at: nanModel, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: model + "/config.json", toPath: nanModel.appendingPathComponent("config.json").path)
        var st = try Data(contentsOf: URL(fileURLWithPath: model + "/diffusion_pytorch_model.safetensors"))
        let n = Int(st.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let stHeader = try XCTUnwrap(JSONSerialization.jsonObject(with: st.subdata(in: 8..<(8 + n))) as? [String: Any])
        let entry = try XCTUnwrap(stHeader["conv_out.weight"] as? [String: Any])
        let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
        XCTAssertEqual(entry["dtype"] as? String, "F32")
        for i in stride(from: 8 + n + offsets[0], to: 8 + n + offsets[1], by: 4) { st.replaceSubrange(i..<(i + 4), with: [0x00, 0x00, 0xC0, 0x7F]) }
        try st.write(to: nanModel.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        try job("nan", #", "solver": {"method": "dmilo", "steps": 2, "outer": 1, "inner": 1}"#)
        let r2 = try DaemonProcess.run(["--spool", s.path, "--model", nanModel.path, "--once", "--threads", "1"], timeout: 300, executable: product)
        XCTAssertEqual(r2.status, 1, r2.stderr)
        try assertFailed(s, "nan", code: "result.nonfinite", messageContains: "NaN", context: r2.stderr)
        XCTAssertEqual(s.errorJSON("bigpng")?["error"] as? String, "image.too_large", "\(String(describing: s.errorJSON("bigpng")))")
    }

    /// A gray 8-bit PNG of zeros (a few KB for millions of pixels: the "decompression bomb" of item 13).
    static func zeroPNG(width: Int, height: Int) -> Data {
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let tb = Array(type.utf8) + body
            return be32(body.count) + tb + be32(Int(crc32(tb)))
        }
        let raw = [UInt8](repeating: 0, count: (width + 1) * height)
        let z = zlibCompress(raw)
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += chunk("IHDR", be32(width) + be32(height) + [8, 0, 0, 0, 0])
        png += chunk("IDAT", z)
        png += chunk("IEND", [])
        return Data(png)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }

    /// zlib stream of `data`: gzip's raw deflate payload (gzip is an essential Debian package) wrapped in a zlib
    /// header and an Adler-32 trailer.
    static func zlibCompress(_ data: [UInt8]) -> [UInt8] {
        let tmp = NSTemporaryDirectory() + "zpng-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: tmp, contents: Data(data))
        defer { unlink(tmp); unlink(tmp + ".gz") }
        _ = sh("gzip -n -9 \(tmp)")
        let gz = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: tmp + ".gz"))) ?? Data())
        guard gz.count > 18 else { return [] }
        let deflate = Array(gz[10..<(gz.count - 8)])  // -n: no name field, so the header is 10 bytes
        var a: UInt32 = 1, b: UInt32 = 0
        for x in data { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        let adler = (b << 16) | a
        return [0x78, 0xDA] + deflate + [UInt8(adler >> 24), UInt8(adler >> 16 & 0xff), UInt8(adler >> 8 & 0xff), UInt8(adler & 0xff)]
    }

    /// Job `name` is in failed/ with `code` in its error.json and a message containing `text`.
    func assertFailed(
        _ s: TempSpool, _ name: String, code: String, messageContains text: String, context: String = "",
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let e = try XCTUnwrap(s.errorJSON(name), context, file: file, line: line)
        XCTAssertEqual(e["error"] as? String, code, file: file, line: line)
        XCTAssertTrue((e["message"] as? String ?? "").contains(text), "\(e)", file: file, line: line)
    }
}
