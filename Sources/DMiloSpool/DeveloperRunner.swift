import DMiloJobs
import Foundation

/// Test-only runner behind `dmilod --test-runner`, so the daemon's protocol can be exercised without a model.
///
/// - `sleep:MS`: reads every file the job names (safe open), rejects a `.npy` measurement without the NPY magic
///   (`file.unreadable`), sleeps MS milliseconds in 10 ms slices reporting progress and honouring cancellation,
///   then writes `result.txt` (job name, pid, method) and a small `metrics.json`.
/// - `crash:MS`: like `sleep`, then kills the process with SIGKILL (for crash-recovery tests).
/// - `stall:MS`: sleeps MS milliseconds in one piece without reporting progress (a hung solver, for watchdog tests).
public struct DeveloperRunner: JobRunner {
    public enum Mode: Sendable, Equatable { case sleep, crash, stall }
    public var mode: Mode
    public var milliseconds: Int

    /// Parses `sleep:MS` / `crash:MS`.
    public init?(spec: String) {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let ms = Int(parts[1]), ms >= 0 else { return nil }
        switch parts[0] {
        case "sleep": mode = .sleep
        case "crash": mode = .crash
        case "stall": mode = .stall
        default: return nil
        }
        milliseconds = ms
    }

    public func run(job: ClaimedJob, outputDirectory: URL, control: JobControl) throws -> JobOutcome {
        var bytes = 0
        for (field, ref) in job.manifest.fileReferences {
            let data = try job.read(ref, field: field)
            bytes += data.count
            if field == "measurement", ref.description.hasSuffix(".npy"), !data.starts(with: [0x93] + Array("NUMPY".utf8)) {
                throw JobError(code: JobError.fileUnreadable,
                               message: "\(ref): not an NPY file (magic \\x93NUMPY missing or file truncated)", field: field)
            }
        }
        if mode == .stall { usleep(useconds_t(milliseconds * 1000)) }
        let slices = mode == .stall ? 0 : max(1, milliseconds / 10)
        for i in 0..<slices {
            try control.checkCancelled()
            usleep(useconds_t(milliseconds * 1000 / slices))
            control.progress(Double(i + 1) / Double(slices), "slice \(i + 1)/\(slices)")
        }
        if mode == .crash { kill(getpid(), SIGKILL) }
        let method = job.settings.solver.method ?? "dmilo-pgd"
        let text = "job=\(job.name)\npid=\(getpid())\nmethod=\(method)\nbytes=\(bytes)\n"
        try Data(text.utf8).write(to: outputDirectory.appendingPathComponent("result.txt"))
        let metrics: [String: Any] = ["job": job.name, "method": method, "operator": job.manifest.operatorType,
                                      "seed": job.manifest.seed, "unet_evaluations": 0]
        try JSONSerialization.data(withJSONObject: metrics, options: [.sortedKeys])
            .write(to: outputDirectory.appendingPathComponent("metrics.json"))
        return JobOutcome(method: method, unetEvaluations: 0, summary: "test runner, \(bytes) input bytes")
    }
}
