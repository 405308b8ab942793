import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `journalctl JOB=x` on a journal written in the test: the real `systemd-journald` runs in a private mount
/// namespace whose `/run` is a test folder (sd_journal_sendv(3) always sends to /run/systemd/journal/socket and
/// honours no setting for it), with `Storage=volatile`, so it writes only under that folder and nothing of the host
/// journal is touched. `dmilod-test --once` runs beside it with stderr declared a journal stream (JOURNAL_STREAM),
/// as systemd would start it; the test then reads the journal file back with `journalctl --file … JOB=NAME`.
/// Needs systemd-journald, journalctl and unshare (all in the `systemd` and `util-linux` packages the Makefile
/// installs) and permission for a mount namespace (root, or unprivileged user namespaces); skipped otherwise.
final class JournalFieldsTests: XCTestCase {
    static let journald = "/lib/systemd/systemd-journald"

    static func run(_ exe: String, _ args: [String], stdout: URL? = nil) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"] { env.removeValue(forKey: k) }
        p.environment = env
        if let stdout {
            FileManager.default.createFile(atPath: stdout.path, contents: nil)
            p.standardOutput = try FileHandle(forWritingTo: stdout)
        } else {
            p.standardOutput = FileHandle.nullDevice
        }
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    func testJournalctlFindsAJobByItsField() throws {
        let exe = try DaemonBinary.require()
        for tool in [Self.journald, "/usr/bin/journalctl", "/usr/bin/unshare", "/etc/systemd/journald.conf"] {
            guard FileManager.default.fileExists(atPath: tool) else { throw XCTSkip("\(tool) not installed") }
        }
        let s = try TempSpool()
        let run = s.url("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let conf = s.url("journald.conf")
        try Data("[Journal]\nStorage=volatile\nRateLimitBurst=0\n".utf8).write(to: conf)
        try s.dropGoodJob("jgood")
        try s.drop("jbad.json", Data(#"{"version": 1, "measurement": "jbad.npy", "operator": {"type": "denoise"}, "colour": 1}"#.utf8))
        let stderrFile = s.url("dmilod.stderr"), rcFile = s.url("dmilod.rc")
        // $1 run folder, $2 journald.conf, $3 dmilod's stderr, $4 its exit status file, then dmilod's command line.
        let script = """
            mount --bind "$1" /run && mount --bind "$2" /etc/systemd/journald.conf || exit 90
            \(Self.journald) >/dev/null 2>&1 & jd=$!
            i=0; while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
            [ -S /run/systemd/journal/socket ] || { kill $jd; exit 91; }
            err="$3"; rc="$4"; shift 4
            : > "$err"
            JOURNAL_STREAM=$(stat -L -c %d:%i "$err") "$@" 2>>"$err"; echo $? > "$rc"
            kill $jd; wait $jd
            """
        let ns = getuid() == 0 ? ["-m"] : ["-r", "-m"]
        let status = try Self.run(
            "/usr/bin/unshare",
            ns + [
                "--", "/bin/sh", "-c", script, "sh", run.path, conf.path, stderrFile.path,
                rcFile.path, exe, "--spool", s.path, "--once", "--test-runner", "sleep:1",
            ])
        if status == 90 || status == 91 || (status != 0 && !FileManager.default.fileExists(atPath: rcFile.path)) {
            throw XCTSkip("no private mount namespace with a journald here (unshare/journald exit \(status))")
        }
        XCTAssertEqual(status, 0)
        let stderr = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
        XCTAssertEqual(
            (try? String(contentsOf: rcFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines), "1",
            "--once exits 1: jbad failed\n\(stderr)")
        XCTAssertFalse(stderr.contains("job done"), "entries go to the journal, not stderr:\n\(stderr)")
        let journal = try XCTUnwrap(
            FileManager.default.enumerator(atPath: run.path)?.compactMap { $0 as? String }
                .first { $0.hasSuffix("system.journal") }, "no journal file written")
        func entries(_ match: String) throws -> [[String: String]] {
            let out = s.url("journalctl.out")
            XCTAssertEqual(
                try Self.run(
                    "/usr/bin/journalctl", ["--file", run.appendingPathComponent(journal).path, match, "-o", "json", "--no-pager"],
                    stdout: out), 0)
            return try String(contentsOf: out, encoding: .utf8).split(separator: "\n").compactMap {
                (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?.compactMapValues { $0 as? String }
            }
        }
        let good = try entries("JOB=jgood")
        let done = try XCTUnwrap(good.first { ($0["MESSAGE"] ?? "").hasPrefix("job done") }, "\(good)")
        XCTAssertEqual(done["METHOD"], "dmilo-pgd")
        XCTAssertEqual(done["OPERATOR"], "denoise")
        XCTAssertEqual(done["MODEL"], "default")
        XCTAssertEqual(done["UNET_EVALUATIONS"], "0")
        XCTAssertEqual(done["PRIORITY"], "6")
        XCTAssertEqual(done["SYSLOG_IDENTIFIER"], "dmilod")
        XCTAssertEqual(done["_TRANSPORT"], "journal")
        XCTAssertNotNil(done["WALL_SECONDS"].flatMap(Double.init), "\(done)")
        XCTAssertTrue(good.contains { ($0["MESSAGE"] ?? "").hasPrefix("job started") }, "\(good)")
        let bad = try entries("JOB=jbad")
        let failed = try XCTUnwrap(bad.first { $0["ERROR_CODE"] != nil }, "\(bad)")
        XCTAssertEqual(failed["ERROR_CODE"], "manifest.invalid")
        XCTAssertEqual(failed["FIELD"], "colour")
        XCTAssertEqual(failed["PRIORITY"], "4")
        XCTAssertTrue((failed["MESSAGE"] ?? "").hasPrefix("job failed → \(s.path)/failed/jbad: "), "\(failed)")
        XCTAssertEqual(try entries("ERROR_CODE=manifest.invalid").count, 1)
    }

    // stderr declared a journal stream but no journal socket to send to: every event still arrives, as a line on
    // stderr (sd_journal_sendv fails, the handler falls back), so nothing is lost outside a working journal.
    func testNoJournalSocketFallsBackToStderrLines() throws {
        let exe = try DaemonBinary.require()
        guard !FileManager.default.fileExists(atPath: "/run/systemd/journal/socket") else {
            throw XCTSkip("a journald runs here; the fallback needs a box without one")
        }
        let s = try TempSpool()
        try s.dropGoodJob("fb")
        let err = s.url("stderr")
        let script = #"err="$1"; shift; : > "$err"; JOURNAL_STREAM=$(stat -L -c %d:%i "$err") exec "$@" 2>>"$err""#
        let status = try Self.run("/bin/sh", ["-c", script, "sh", err.path, exe, "--spool", s.path, "--once", "--test-runner", "sleep:1"])
        XCTAssertEqual(status, 0)
        let text = try String(contentsOf: err, encoding: .utf8)
        XCTAssertTrue(text.contains("<6>job done in ") && text.contains("JOB=fb"), text)
    }
}
