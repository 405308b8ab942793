import DMiloJobs
import Foundation
import Logging

/// The daemon loop: claims ready jobs from the spool, runs them through a ``JobRunner`` on worker threads
/// (runners block: they do minutes of CPU work, so they never run on Swift's cooperative pool), publishes
/// results, and keeps systemd and the metrics file informed.
public final class SpoolDaemon: @unchecked Sendable {
    public let spool: Spool
    private let logger: Logger
    private let notifier: SystemdNotifier
    private let metrics: MetricsFile
    private let once: Bool

    private let state = NSCondition()
    private var config: DaemonConfig
    private var runner: any JobRunner
    private var stopping = false
    private var wakeups = 0
    private var queueLength = 0
    private var doneCount = 0
    private var failedCount = 0
    /// Running jobs: worker index → (job name, fraction, note, time of last progress, control, the job, why it is being
    /// cancelled by a client or by its folder's deletion; nil = not, or a graceful stop).
    private var running:
        [Int: (
            name: String, fraction: Double, note: String, last: Double, control: JobControl,
            job: Spool.WorkJob, cancel: CancelCause?
        )] = [:]
    private enum CancelCause { case client, vanished }
    /// A cancel request naming no queued or running job is removed after this many seconds (it may have been made
    /// just before the job's manifest arrived, or while the job moved from `incoming/` to `work/`).
    static let unmatchedCancelSeconds = 60.0
    /// First time a manifest with missing files was seen (for `missing_file_grace_seconds`).
    private var firstSeenMissing: [String: Double] = [:]
    private var lastProgressStatus = 0.0
    /// Disk-full state: since when (nil = not full), current back-off and the time of the next probe.
    private var diskFullSince: Double?
    private var diskBackoff = 1.0
    private var diskRetryAt = 0.0
    /// Last time `incoming/` was swept for stale unreferenced data files.
    private var lastStaleSweep = 0.0
    /// Last time the retention limits (ages included) were applied; one sweep at a time.
    private var lastRetentionSweep = 0.0
    private let retentionLock = NSLock()
    /// Every this many seconds the age limits are applied even when no job finishes (they count in days).
    static let retentionInterval = 3600.0
    /// Serialises scan+claim within this process (claims are also safe across processes, via rename).
    private let claimLock = NSLock()
    /// Ready candidates of the last scan not yet claimed (reversed: next at the end). Guarded by `claimLock`.
    private var pending: [Spool.Candidate] = []

    public init(
        spool: Spool, config: DaemonConfig, runner: any JobRunner, logger: Logger,
        notifier: SystemdNotifier, once: Bool
    ) {
        self.spool = spool
        self.config = config
        self.runner = runner
        self.logger = logger
        self.notifier = notifier
        self.metrics = MetricsFile(path: config.metricsFile)
        self.once = once
        let log = logger
        metrics.onStateChange = { ok, path, reason in
            if ok { log.notice("metrics file \(path) written again") } else { log.warning("cannot write metrics file \(path): \(reason) (logged once until it works again)") }
        }
    }

    // MARK: control from other threads

    /// Graceful stop: running jobs are asked to cancel (their runner throws ``JobCancelled``, the job goes back
    /// to `incoming/`) or finish; no new job starts.
    public func requestStop() {
        state.lock()
        let first = !stopping
        stopping = true
        let controls = running.values.map(\.control)
        state.broadcast()
        state.unlock()
        if first {
            notifier.stopping()
            logger.notice("stopping: \(controls.count) job(s) in progress will be finished or put back")
        }
        controls.forEach { $0.cancel() }
    }

    /// Applies a reloaded config (and runner, if the model changed). Running jobs keep their settings.
    public func reload(config newConfig: DaemonConfig, runner newRunner: (any JobRunner)?) {
        state.lock()
        config = newConfig
        if let r = newRunner { runner = r }
        metrics.path = newConfig.metricsFile
        state.broadcast()
        state.unlock()
        metrics.write()
        applyRetention(ages: true)
        updateStatus()
    }

    /// Jobs this daemon moved to `failed/` (`dmilod --once` exits 1 when there is any).
    public var failedJobs: Int { state.withLock { failedCount } }

    /// Before READY=1: the first metrics write (so an unusable path shows in the first STATUS=) and the retention
    /// limits applied to what earlier runs left.
    public func startupChecks() {
        metrics.write()
        applyRetention(ages: true)
        updateStatus()
    }

    /// Deletes result folders beyond the config's `retention`: the count limits always, the age limits with `ages`
    /// (at start, on reload and every ``retentionInterval``: they count in days, so a job's end need not check
    /// them). Logs each deletion and counts it in the metrics.
    private func applyRetention(ages: Bool) {
        let policy = state.withLock { config.retention }
        guard !policy.isEmpty else { return }
        retentionLock.lock(); defer { retentionLock.unlock() }
        let now = Date().timeIntervalSince1970
        if ages { lastRetentionSweep = now }
        let deleted = Retention.sweep(spool, policy: policy, now: now, ages: ages)
        for d in deleted {
            let done = d.folder == "done"
            let limit =
                d.reason == "age"
                ? "older than \(d.folder)_max_age_days \((done ? policy.doneMaxAgeDays : policy.failedMaxAgeDays) ?? 0)"
                : "beyond \(d.folder)_max_jobs \((done ? policy.doneMaxJobs : policy.failedMaxJobs) ?? 0)"
            logger.notice("retention: deleted \(d.folder)/\(d.name) (\(limit))", metadata: ["JOB": "\(d.name)"])
        }
        for folder in ["done", "failed"] {
            metrics.recordRetention(folder: folder, deleted: deleted.filter { $0.folder == folder }.count)
        }
    }

    private var isStopping: Bool {
        state.lock(); defer { state.unlock() }
        return stopping
    }

    // MARK: main loop

    /// Runs until ``requestStop()`` (or, with `once`, until nothing is left). Blocks the calling thread.
    public func run() {
        let watcher = IncomingWatcher(directories: [spool.incoming, spool.cancel])
        if watcher == nil { logger.warning("inotify unavailable; relying on periodic rescans") }
        metrics.write()
        let workers = max(1, config.jobs)
        let group = DispatchGroup()
        for index in 0..<workers {
            group.enter()
            let t = Thread { [self] in
                workerLoop(index)
                group.leave()
            }
            t.name = "dmilod-worker-\(index)"
            t.stackSize = 16 << 20
            t.start()
        }
        // The watcher loop wakes idle workers on inotify events and on each rescan tick.
        let watchThread = Thread { [self] in
            while !isStopping {
                let rescan = state.withLock { config.rescanSeconds }
                let tick = min(rescan, notifier.pingInterval ?? rescan, 0.5)
                let event =
                    watcher?.wait(timeout: tick)
                    ?? {
                        usleep(useconds_t(tick * 1e6)); return false
                    }()
                state.lock()
                if event { wakeups += 1 }
                state.broadcast()
                state.unlock()
                serveCancelRequests()
                let ageLimits = state.withLock { config.retention.hasAgeLimit }
                let last = retentionLock.withLock { lastRetentionSweep }
                if ageLimits && Date().timeIntervalSince1970 - last >= Self.retentionInterval {
                    applyRetention(ages: true)
                }
            }
        }
        watchThread.start()
        group.wait()
        state.lock(); stopping = true; state.broadcast(); state.unlock()
        updateStatus()
    }

    private func workerLoop(_ index: Int) {
        while true {
            if isStopping { return }
            if let wait = diskWait() {
                if once { return }  // --once does not wait for space: the jobs stay queued
                state.lock()
                let deadline = Date(timeIntervalSinceNow: min(wait, notifier.pingInterval ?? wait, 1))
                while !stopping && Date() < deadline { if !state.wait(until: deadline) { break } }
                state.unlock()
                idlePing()
                continue
            }
            if let job = nextJob() {
                process(job, worker: index)
                continue
            }
            if once { return }  // nothing ready and no orphan: --once is done for this worker
            idlePing()
            state.lock()
            let seen = wakeups
            let rescan = config.rescanSeconds
            let deadline = Date(timeIntervalSinceNow: min(rescan, notifier.pingInterval ?? rescan))
            while !stopping && wakeups == seen && Date() < deadline {
                if !state.wait(until: deadline) { break }
            }
            state.unlock()
        }
    }

    /// Next job to run: orphans of crashed daemons first, then ready manifests from `incoming/`, oldest first.
    private func nextJob() -> Spool.WorkJob? {
        claimLock.lock(); defer { claimLock.unlock() }
        for orphan in spool.orphans() {
            switch orphan {
            case .job(let job):
                logger.notice("recovering job left in work/", metadata: ["JOB": "\(job.name)"])
                return job
            case .publishing(let job, let parent):
                do {
                    let final = try spool.publish(job, failed: parent == "failed")
                    logger.notice("completed interrupted publication to \(final)", metadata: ["JOB": "\(job.name)"])
                } catch {
                    logger.error("cannot complete publication: \(error)", metadata: ["JOB": "\(job.name)"])
                    spool.release(job)
                }
            }
        }
        // Ready candidates of one scan are claimed in order before the folder is read again, so a backlog of
        // n manifests costs O(n) manifest reads rather than a full scan per job.
        for _ in 0..<2 {
            if pending.isEmpty { pending = Array(readyCandidates().reversed()) }
            while let c = pending.popLast() {
                var failure: String?
                let claimed = spool.claim(c, failure: &failure)
                if let failure, ResultChecks.isDiskFull(failure) {
                    // Nothing can be claimed on a full disk: keep the rest queued and back off.
                    pending.removeAll()
                    diskFull(failure)
                    updateStatus()
                    return nil
                }
                if let job = claimed {
                    metrics.setQueue(
                        state.withLock {
                            queueLength = max(0, queueLength - 1); return queueLength
                        })
                    return job
                }
            }
        }
        updateStatus()
        return nil
    }

    /// Scans `incoming/`; returns the jobs to start now (all files present, or failing anyway), oldest first.
    private func readyCandidates() -> [Spool.Candidate] {
        let (maxManifest, grace, settle, staleHours) = state.withLock {
            (config.maxManifestKB << 10, config.missingFileGraceSeconds, config.settleSeconds, config.staleFileHours)
        }
        let candidates = spool.scanIncoming(maxManifestBytes: maxManifest)
        let now = Date().timeIntervalSince1970
        // Data files no manifest names, untouched for `stale_file_hours` (their manifest never came or could not
        // be parsed), are removed so incoming/ cannot fill up with them; once a minute at most.
        if now - state.withLock({ lastStaleSweep }) > 60 {
            state.withLock { lastStaleSweep = now }
            for f in spool.removeStaleFiles(olderThan: staleHours * 3600, candidates: candidates) {
                logger.notice("removed unclaimed data file incoming/\(f): no manifest names it and it is older than \(staleHours) h")
            }
        }
        let present = Set(candidates.map(\.manifestFile))
        state.withLock {
            queueLength = candidates.count
            firstSeenMissing = firstSeenMissing.filter { present.contains($0.key) }
        }
        metrics.setQueue(candidates.count)
        return candidates.filter { c in
            // A manifest written in place (not renamed in) may be read half-written: a parse error on a file younger
            // than `settle_seconds` is retried on a later scan rather than failing the job.
            if c.error?.code == JobError.manifestInvalid && c.rawName == nil && !once && now - c.mtime < settle { return false }
            guard !c.missing.isEmpty && c.error == nil else { return true }
            let first = state.withLock { () -> Double in
                if let t = firstSeenMissing[c.manifestFile] { return t }
                firstSeenMissing[c.manifestFile] = now
                return now
            }
            // Daemon mode waits for the files; --once (everything "already in incoming/") and the grace
            // period turn a missing file into a failure rather than a job that waits forever.
            return once || now - first >= grace
        }
    }

    // MARK: one job

    private func process(_ job: Spool.WorkJob, worker: Int) {
        var log = logger
        log[metadataKey: "JOB"] = "\(job.name)"
        // A worker process that dies is retried here, in this loop, until `attempts` runs have died.
        while true {
            switch attempt(job, worker: worker, log: &log) {
            case .finished: return
            case .workerDied: continue
            }
        }
    }

    private enum AttemptOutcome { case finished, workerDied }

    private func attempt(_ job: Spool.WorkJob, worker: Int, log: inout Logger) -> AttemptOutcome {
        let (cfg, runner) = state.withLock { (config, self.runner) }
        let started = Date()
        let previous = spool.attempts(of: job)
        if previous >= cfg.attempts {
            let e = JobError(
                code: JobError.jobCrashed,
                message: "\(job.manifestFile): the job's process died \(previous) time(s) while running it; giving up",
                field: nil)
            finishFailed(job, error: e, log: log, started: started)
            return .finished
        }
        do {
            try spool.setAttempts(previous + 1, of: job)
        } catch {
            log.error("cannot record attempt: \(error); leaving the job in work/")
            if ResultChecks.isDiskFull("\(error)") { diskFull("\(error)") }
            spool.release(job)
            return .finished
        }
        let control = JobControl(onProgress: { [weak self] fraction, note in
            self?.progress(worker: worker, fraction: fraction, note: note)
        })
        control.progressFile = spool.progressFile(for: job)
        state.withLock {
            running[worker] = (job.name, 0, "starting", Date().timeIntervalSince1970, control, job, nil)
            if stopping { control.cancel() }
        }
        updateStatus()
        defer {
            state.withLock { _ = running.removeValue(forKey: worker) }
            updateStatus()
        }

        let claimed: ClaimedJob
        do {
            if let reason = job.invalidName {
                throw JobError.manifest("\(job.manifestFile): \(reason)")
            }
            let data = try SafeFile.read(
                "\(job.path)/\(job.manifestFile)", display: job.manifestFile, field: nil,
                maxBytes: cfg.maxManifestKB << 10)
            if !JobName.isValid(job.name) {
                throw JobError.manifest("\(job.manifestFile): job name `\(job.name)` is not [A-Za-z0-9._-]{1,128} or starts with '.'")
            }
            let manifest = try Manifest.parse(data, file: job.manifestFile)
            // Cancelled while queued (or while the daemon was down): never started.
            if spool.isCancelRequested(job.name) { throw Spool.cancelledError(job, running: false) }
            log[metadataKey: "OPERATOR"] = "\(manifest.operatorType)"
            // Checked here too (the runner checks again) so a job naming an unconfigured model fails without a worker
            // process being started for it. A manifest without `model` takes the default, which the runner provides.
            if let name = manifest.model, cfg.modelPath(named: name) == nil {
                let known = cfg.modelPaths.keys.sorted().joined(separator: ", ")
                throw JobError(
                    code: JobError.modelUnknown,
                    message: "\(job.manifestFile): model `\(name)` is not configured (configured: \(known.isEmpty ? "none" : known))",
                    field: "model")
            }
            log[metadataKey: "MODEL"] = "\(manifest.model ?? "default")"
            claimed = ClaimedJob(
                name: job.name, manifest: manifest, jobDirectory: URL(fileURLWithPath: job.path),
                calibrationDirectory: URL(fileURLWithPath: spool.calibration),
                settings: cfg.jobSettings(for: manifest))
            try claimed.checkFiles()
        } catch let e as JobError {
            let e2 = e.code == JobError.fileUnreadable && e.field == nil ? JobError.manifest("manifest \(e.message)") : e
            finishFailed(job, error: e2, log: log, started: started)
            return .finished
        } catch {
            finishFailed(job, error: JobError.manifest("\(job.manifestFile): \(error)"), log: log, started: started)
            return .finished
        }
        log[metadataKey: "METHOD"] = "\(claimed.settings.solver.method ?? "default")"
        log.info("job started (attempt \(previous + 1) of \(cfg.attempts))")

        let output: String
        do { output = try spool.outputFolder(for: job, failed: false) } catch {
            log.error("\(error); leaving the job in work/")
            if ResultChecks.isDiskFull("\(error)") { diskFull("\(error)") }
            try? spool.setAttempts(previous, of: job)
            spool.release(job)
            return .finished
        }
        if !cfg.isolateJobs && cfg.jobs == 1 { MetricsFile.resetPeakRSS() }
        func peak() -> Int { IsolatedRunner.takePeakRSS() ?? MetricsFile.peakRSSBytes() }
        func cancelCause() -> CancelCause? {
            state.withLock { running[worker]?.cancel } ?? (spool.isVanished(job) ? .vanished : nil)
        }
        do {
            let outcome = try runner.run(job: claimed, outputDirectory: URL(fileURLWithPath: output), control: control)
            if spool.isVanished(job) { throw JobCancelled() }  // deleted after its last evaluation: no inputs to publish
            let final = try spool.publish(job, failed: false)
            let seconds = Date().timeIntervalSince(started)
            metrics.record(status: "done", duration: seconds, peakRSS: peak(), unetEvaluations: outcome.unetEvaluations)
            state.withLock { doneCount += 1 }
            diskOK()
            log.info(
                "job done in \(String(format: "%.2f", seconds)) s → \(final) \(outcome.summary)",
                metadata: [
                    "METHOD": "\(outcome.method)", "UNET_EVALUATIONS": "\(outcome.unetEvaluations)",
                    "WALL_SECONDS": "\(String(format: "%.3f", seconds))",
                ])
            if cancelCause() == .client {
                spool.removeCancelRequest(job.name)
                log.notice("the job finished before its cancel request could stop it; request removed")
            }
            applyRetention(ages: false)
        } catch is JobCancelled {
            FileOps.removeTree(output)
            switch cancelCause() {
            case .client?, .vanished?:
                finishFailed(job, error: Spool.cancelledError(job, running: true), log: log, started: started)
            case nil:
                // Interrupted by us, not a crash: the attempt does not count.
                putBack(job, attempts: previous, log: log, why: "graceful stop")
            }
        } catch let e as IsolatedRunner.WorkerDied {
            _ = peak()
            FileOps.removeTree(output)
            log.error("job's \(e) (attempt \(previous + 1) of \(cfg.attempts)); the daemon and other jobs carry on")
            return .workerDied
        } catch let e as CodedError where e.code == ResultChecks.diskFull {
            _ = peak()
            FileOps.removeTree(output)
            diskFull(e.message)
            putBack(job, attempts: previous, log: log, why: "disk full")
        } catch let e as CodedError {
            _ = peak()
            FileOps.removeTree(output)
            finishFailed(job, error: JobError(e), log: log, started: started)
        } catch let e as SpoolError where spool.isVanished(job) {
            FileOps.removeTree(output)
            finishFailed(job, error: JobError(code: JobError.jobCancelled, message: "\(e)"), log: log, started: started)
        } catch let e as SpoolError {
            log.error("cannot publish results: \(e); job stays in work/")
            if ResultChecks.isDiskFull(e.description) { diskFull(e.description) }
            spool.release(job)
        } catch {
            FileOps.removeTree(output)
            finishFailed(
                job, error: JobError(code: JobError.internalError, message: "\(job.manifestFile): \(error)"),
                log: log, started: started)
        }
        return .finished
    }

    /// Puts a job back to `incoming/` with its attempt count unchanged, or leaves it in `work/` for later.
    private func putBack(_ job: Spool.WorkJob, attempts: Int, log: Logger, why: String) {
        if spool.requeue(job, attempts: attempts) {
            log.notice("job put back to incoming/ (\(why))")
        } else {
            try? spool.setAttempts(attempts, of: job)
            spool.release(job)
            log.notice("job left in work/ for a later run (\(why))")
        }
    }

    private func finishFailed(_ job: Spool.WorkJob, error: JobError, log: Logger, started: Date) {
        // A job folder deleted under us ends as cancelled (see Spool.failVanished), whatever else went wrong.
        let vanished = spool.isVanished(job)
        let published =
            vanished
            ? JobError(code: JobError.jobCancelled, message: "work/\(job.dirName) was deleted while the job ran")
            : ErrorCodes.publishable(error)
        // The client's cancel request is served by this failure (cancelled) or moot (failed anyway).
        defer { if published.code == JobError.jobCancelled { spool.removeCancelRequest(job.name) } }
        do {
            let final = try vanished ? spool.failVanished(job) : spool.fail(job, error: published)
            let seconds = Date().timeIntervalSince(started)
            metrics.record(
                status: "failed", duration: seconds,
                peakRSS: IsolatedRunner.takePeakRSS() ?? MetricsFile.peakRSSBytes(), errorCode: published.code)
            state.withLock { failedCount += 1 }
            diskOK()
            // ERROR is the field's older name, kept beside ERROR_CODE for existing journal queries.
            var m: Logger.Metadata = [
                "ERROR": "\(published.code)", "ERROR_CODE": "\(published.code)",
                "WALL_SECONDS": "\(String(format: "%.3f", seconds))",
            ]
            if let f = published.field { m["FIELD"] = "\(f)" }
            log.warning("job failed → \(final): \(published.message)", metadata: m)
            applyRetention(ages: false)
        } catch {
            log.error("cannot move failed job: \(error); it stays in work/")
            if ResultChecks.isDiskFull("\(error)") { diskFull("\(error)") }
            spool.release(job)
        }
    }

    // MARK: cancel requests

    /// Serves `cancel/` (called from the watcher loop, at most every 0.5 s and on inotify events): a running job is
    /// flagged (its runner stops at the next UNet evaluation), a queued one is claimed and failed at once, a request
    /// naming no such job is removed after ``unmatchedCancelSeconds``. Also notices running jobs whose `work/` folder
    /// was deleted and stops them the same way.
    private func serveCancelRequests() {
        for name in spool.removeInvalidCancelFiles() {
            logger.notice("removed cancel/\(name): not a valid job name")
        }
        let requests = spool.cancelRequests()
        let names = Set(requests.map(\.name))
        var matched = Set<String>()
        let toStop: [(JobControl, String, CancelCause)] = state.withLock {
            var out: [(JobControl, String, CancelCause)] = []
            for (worker, r) in running {
                if names.contains(r.name) { matched.insert(r.name) }
                guard r.cancel == nil else { continue }
                let cause: CancelCause? = names.contains(r.name) ? .client : (spool.isVanished(r.job) ? .vanished : nil)
                if let cause {
                    running[worker]?.cancel = cause
                    out.append((r.control, r.name, cause))
                }
            }
            return out
        }
        for (control, name, cause) in toStop {
            logger.notice(
                cause == .client
                    ? "cancel requested: stopping the running job"
                    : "the job's folder in work/ was deleted: stopping the job",
                metadata: ["JOB": "\(name)"])
            control.cancel()
        }
        for r in requests where !matched.contains(r.name) {
            if cancelQueued(r.name) { continue }
            if spool.workFolder(ofJob: r.name) != nil { continue }  // claimed just now, or run by another daemon
            if r.age > Self.unmatchedCancelSeconds {
                spool.removeCancelRequest(r.name)
                logger.notice("removed cancel/\(r.name): no job of that name was queued or running for \(Int(Self.unmatchedCancelSeconds)) s")
            }
        }
    }

    /// Claims the queued job `name` (if its manifest is in `incoming/`) and fails it as cancelled, inputs kept.
    private func cancelQueued(_ name: String) -> Bool {
        let manifestFile = "\(name).json"
        let path = "\(spool.incoming)/\(manifestFile)"
        let maxBytes = state.withLock { config.maxManifestKB << 10 }
        let job: Spool.WorkJob? = claimLock.withLock {
            guard FileOps.lexists(path) else { return nil }
            // The manifest tells the claim which data files move with it (a broken one: best effort, as for any job).
            let manifest = (try? SafeFile.read(path, display: manifestFile, field: nil, maxBytes: maxBytes))
                .flatMap { try? Manifest.parse($0, file: manifestFile) }
            return spool.claim(
                Spool.Candidate(
                    manifestFile: manifestFile, name: name, manifest: manifest, error: nil,
                    missing: [], mtime: 0))
        }
        guard let job else { return false }
        var log = logger
        log[metadataKey: "JOB"] = "\(name)"
        finishFailed(job, error: Spool.cancelledError(job, running: false), log: log, started: Date())
        return true
    }

    // MARK: disk full

    /// Enters (or stays in) the disk-full state: no job is claimed until the back-off has passed and a probe write
    /// succeeds. The back-off doubles from 1 s to 5 min; only the change of state is logged.
    private func diskFull(_ reason: String) {
        let entered = state.withLock { () -> Bool in
            let first = diskFullSince == nil
            if first { diskFullSince = Date().timeIntervalSince1970; diskBackoff = 1 } else { diskBackoff = min(diskBackoff * 2, 300) }
            diskRetryAt = Date().timeIntervalSince1970 + diskBackoff
            return first
        }
        if entered {
            logger.error("disk full: no new job starts until space is free (retrying with back-off up to 5 min); jobs stay queued: \(reason)")
            metrics.setDiskFull(true)
        }
    }

    private func diskOK() {
        let left = state.withLock { () -> Double? in
            defer { diskFullSince = nil; diskBackoff = 1 }
            return diskFullSince
        }
        if let since = left {
            logger.notice("disk space available again after \(String(format: "%.0f", Date().timeIntervalSince1970 - since)) s; resuming")
            metrics.setDiskFull(false)
        }
    }

    /// Nil when jobs may start; otherwise seconds to wait. After the back-off a 1 MiB probe in `tmp/` decides.
    private func diskWait() -> Double? {
        let (since, retryAt) = state.withLock { (diskFullSince, diskRetryAt) }
        guard since != nil else { return nil }
        let now = Date().timeIntervalSince1970
        if now < retryAt { return retryAt - now }
        if spool.probeFreeSpace(bytes: 1 << 20) {
            // Space for a probe is not space for a job's results: one trial job goes ahead (the others wait out
            // another back-off); only a job that publishes ends the state.
            state.withLock { diskRetryAt = now + diskBackoff }
            return nil
        }
        diskFull("probe write in tmp/ failed")
        return state.withLock { diskBackoff }
    }

    // MARK: systemd

    private func progress(worker: Int, fraction: Double, note: String) {
        let now = Date().timeIntervalSince1970
        state.withLock {
            if var r = running[worker] {
                r.fraction = fraction
                r.note = note
                r.last = now
                running[worker] = r
            }
        }
        watchdogIfHealthy()
        // STATUS= at most twice a second from progress: runners may report every iteration.
        let due = state.withLock { () -> Bool in
            guard now - lastProgressStatus >= 0.5 else { return false }
            lastProgressStatus = now
            return true
        }
        if due { updateStatus() }
    }

    private func idlePing() { watchdogIfHealthy() }

    /// WATCHDOG=1 only while every running job has reported progress within the watchdog interval,
    /// so one stuck job is not hidden by an idle worker's pings.
    private func watchdogIfHealthy() {
        guard let interval = notifier.pingInterval, state.withLock({ config.watchdog }) else { return }
        let now = Date().timeIntervalSince1970
        let healthy = state.withLock { running.values.allSatisfy { now - $0.last < 2 * interval } }
        if healthy { notifier.watchdogPing() }
    }

    private func updateStatus() {
        let text: String = state.withLock {
            let tail = "queue \(queueLength); done \(doneCount), failed \(failedCount)"
            if stopping { return "stopping; \(tail)" }
            if running.isEmpty { return "idle; \(tail)" }
            let jobs = running.values.sorted { $0.name < $1.name }
                .map { "\($0.name) \(Int($0.fraction * 100))%\($0.note.isEmpty ? "" : " \($0.note)")" }
            return "running \(jobs.joined(separator: ", ")); \(tail)"
        }
        // An unusable metrics file does not stop the service (jobs are still served), but systemd shows it:
        // STATUS= starts with it and ERRNO= carries its errno (`systemctl status` prints both) until a write works.
        let problem = metrics.problem
        notifier.errorNumber(problem?.code ?? 0)
        notifier.status(problem.map { "metrics file unusable: \($0.reason); \(text)" } ?? text)
    }
}
