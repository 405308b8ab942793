import DMiloJobs
import DMiloKernels
import DMiloSpool
import Foundation

/// Test-only runner behind `dmilod-test --test-runner`, so the daemon's protocol can be exercised without a model.
///
/// - `sleep:MS`: reads every file the job names (safe open), rejects a `.npy` measurement without the NPY magic
///   (`file.unreadable`), sleeps MS milliseconds in 10 ms slices reporting progress (one slice = one "UNet
///   evaluation" in progress.json) and honouring cancellation,
///   then writes `result.txt` (job name, pid, method) and a small `metrics.json`.
/// - `crash:MS`: like `sleep`, then kills the process with SIGKILL (for crash-recovery tests).
/// - `stall:MS`: sleeps MS milliseconds in one piece without reporting progress (a hung solver, for watchdog tests).
/// - `abort:MS`: like `crash`, but only for jobs whose name starts with `abort` (SIGABRT, an out-of-memory abort);
///   other jobs run as `sleep` (a crashing job beside a healthy one).
/// - `nan:MS`: like `sleep`, then returns a NaN reconstruction (`result.nonfinite`).
/// - `diskfull:MS`: like `sleep`, but while the spool has a file `tmp/FULL` writing the result fails with ENOSPC
///   (an injected full disk; the tests also use a real small tmpfs where they can mount one).
struct DeveloperRunner: JobRunner {
    enum Mode: Sendable, Equatable { case sleep, crash, stall, abort, nan, diskfull }
    var mode: Mode
    var milliseconds: Int

    /// Parses `sleep:MS` / `crash:MS`.
    init?(spec: String) {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let ms = Int(parts[1]), ms >= 0 else { return nil }
        switch parts[0] {
        case "sleep": mode = .sleep
        case "crash": mode = .crash
        case "stall": mode = .stall
        case "abort": mode = .abort
        case "nan": mode = .nan
        case "diskfull": mode = .diskfull
        default: return nil
        }
        milliseconds = ms
    }

    func run(job: ClaimedJob, outputDirectory: URL, control: JobControl) throws -> JobOutcome {
        var bytes = 0
        for (field, ref) in job.manifest.fileReferences {
            let data = try job.read(ref, field: field)
            bytes += data.count
            if field == "measurement", ref.description.hasSuffix(".npy"), !data.starts(with: [0x93] + Array("NUMPY".utf8)) {
                throw JobError(
                    code: JobError.fileUnreadable,
                    message: "\(ref): not an NPY file (magic \\x93NUMPY missing or file truncated)", field: field)
            }
        }
        if mode == .stall { usleep(useconds_t(milliseconds * 1000)) }
        let slices = mode == .stall ? 0 : max(1, milliseconds / 10)
        let started = Date()
        for i in 0..<slices {
            try control.checkCancelled()
            usleep(useconds_t(milliseconds * 1000 / slices))
            // One slice stands for one UNet evaluation, so progress.json and STATUS= look like a real job's. Progress
            // goes out every slice too (report() sends at most one a second): the watchdog tests need it often.
            var p = JobProgress(method: job.settings.solver.method ?? "dmilo-pgd", stage: "slice \(i + 1)/\(slices)", budget: slices)
            (p.outer, p.inner, p.unetEvaluations, p.elapsedSeconds) = (1, i + 1, i + 1, Date().timeIntervalSince(started))
            control.progress(p.fraction, p.summary)
            control.report(p)
        }
        if mode == .crash { kill(getpid(), SIGKILL) }
        if mode == .abort && job.name.hasPrefix("abort") { abort() }
        if mode == .nan { try ResultChecks.requireFinite(Tensor(shape: [1, 2, 2], values: [0, .nan, 1, .infinity]), metrics: [:]) }
        if mode == .diskfull && FileManager.default.fileExists(atPath: job.calibrationDirectory.deletingLastPathComponent().appendingPathComponent("tmp/FULL").path) {
            throw ResultChecks.writeFailure("cannot write \(outputDirectory.path)/result.txt: \(String(cString: strerror(ENOSPC)))")
        }
        let method = job.settings.solver.method ?? "dmilo-pgd"
        // pid = the daemon's (a worker's parent), so tests can tell which daemon ran a job.
        let daemon = ProcessInfo.processInfo.environment[JobWorker.parentEnv] ?? "\(getpid())"
        let text = "job=\(job.name)\npid=\(daemon)\nworker=\(getpid())\nmethod=\(method)\nbytes=\(bytes)\n"
        try ResultFiles.writeFile(Data(text.utf8), outputDirectory.appendingPathComponent("result.txt"))
        let metrics: [String: Any] = [
            "job": job.name, "method": method, "operator": job.manifest.operatorType,
            "seed": job.manifest.seed, "unet_evaluations": 0,
        ]
        try ResultFiles.writeFile(
            try JSONSerialization.data(withJSONObject: metrics, options: [.sortedKeys]),
            outputDirectory.appendingPathComponent("metrics.json"))
        return JobOutcome(method: method, unetEvaluations: 0, summary: "test runner, \(bytes) input bytes")
    }
}
