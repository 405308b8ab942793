import DMiloJobs
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The child side of ``IsolatedRunner``: `dmilod <daemon arguments> --job-worker DIR --job-output DIR
/// --job-manifest NAME.json`. Reads the config like the daemon (so SIGHUP changes reach the next job), loads the
/// runner, runs the one job and reports on fd 3. Exit 0 whenever a result line was written.
public enum JobWorker {
    /// The descriptor the parent reads.
    static let reportFD: Int32 = 3
    /// Environment variable carrying the daemon's pid.
    public static let parentEnv = "DMILOD_JOB_PARENT"
    /// `stdin`: the daemon sends the config bytes in force on stdin; `none`: no config file.
    public static let configEnv = "DMILOD_JOB_CONFIG"

    static func readStdin() -> Data {
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count <= 1 << 20 {
            let n = read(STDIN_FILENO, &buf, buf.count)
            if n < 0 { if errno == EINTR { continue }; break }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// Exits as soon as the daemon that started us is gone (reparented): its successor re-runs the job.
    static func watchParent() {
        guard let s = ProcessInfo.processInfo.environment[parentEnv], let parent = Int32(s) else { return }
        let t = Thread {
            while getppid() == parent { usleep(100_000) }
            _exit(3)
        }
        t.name = "dmilod-parent-watch"
        t.start()
    }

    static func send(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(reportFD, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return }
            off += n
        }
    }

    static func sendResult(_ obj: [String: Any]) {
        // Never fails: every value is a string, number or null.
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data(#"{"status":"error","code":"internal.error","message":"unencodable result"}"#.utf8)
        send("R\t" + String(decoding: data, as: UTF8.self))
    }

    static func sendError(_ e: JobError) {
        var o: [String: Any] = ["status": "error", "code": e.code, "message": e.message]
        if let f = e.field { o["field"] = f }
        sendResult(o)
    }

    public static func run(
        configPath: String?, overrides: DaemonMain.Overrides, loader: RunnerLoader,
        jobDirectory: String, outputDirectory: String, manifestFile: String
    ) -> Int32 {
        let control = JobControl(onProgress: { fraction, note in
            let clean = note.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 }
            send("P\t\(fraction)\t\(String(clean))")
        })
        control.progressFile = Spool.progressFile(jobDirectory: jobDirectory, manifestFile: manifestFile)
        watchParent()
        signal(SIGTERM, SIG_IGN)
        let term = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        term.setEventHandler { control.cancel() }
        term.resume()
        defer { term.cancel() }
        do {
            let cfg: DaemonConfig
            switch ProcessInfo.processInfo.environment[configEnv] {
            case "stdin": cfg = try DaemonMain.effectiveConfig(readStdin(), file: configPath ?? "-", overrides: overrides)
            case "none": cfg = try DaemonMain.effectiveConfig(nil, file: "-", overrides: overrides)
            default: cfg = try DaemonMain.effectiveConfig(configPath: configPath, overrides: overrides)
            }
            // The spool is the one this job was claimed in (work/NAME → root), whatever the config says now.
            let spool = Spool(root: URL(fileURLWithPath: jobDirectory).deletingLastPathComponent().deletingLastPathComponent())
            let data = try SafeFile.read(
                "\(jobDirectory)/\(manifestFile)", display: manifestFile, field: nil,
                maxBytes: cfg.maxManifestKB << 10)
            let manifest = try Manifest.parse(data, file: manifestFile)
            let job = ClaimedJob(
                name: String(manifestFile.dropLast(5)), manifest: manifest,
                jobDirectory: URL(fileURLWithPath: jobDirectory),
                calibrationDirectory: URL(fileURLWithPath: spool.calibration),
                settings: cfg.jobSettings(for: manifest))
            let runner = try loader(cfg)
            let outcome = try runner.run(job: job, outputDirectory: URL(fileURLWithPath: outputDirectory), control: control)
            var o: [String: Any] = [
                "status": "done", "method": outcome.method, "unet_evaluations": outcome.unetEvaluations,
                "summary": outcome.summary,
            ]
            if let p = outcome.psnr, p.isFinite { o["psnr"] = p }
            sendResult(o)
        } catch is JobCancelled {
            sendResult(["status": "cancelled"])
        } catch let e as CodedError {
            sendError(JobError(e))
        } catch {
            sendError(JobError(code: JobError.internalError, message: "\(manifestFile): \(error)"))
        }
        return 0
    }
}
