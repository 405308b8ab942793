import DMiloJobs
import DMiloVersion
import Foundation
import Logging
import ServiceLifecycle

/// Everything `dmilod` does after parsing its arguments, in a library so the executable links the real
/// ``RunnerLoader`` and tests can call it. Returns the process exit code.
public enum DaemonMain {
    /// Command-line values that override the config file (nil = not given).
    public struct Overrides: Sendable {
        public var spool: String?
        public var model: String?
        public var threads: Int?
        public var memoryBudgetMB: Int?
        public var jobs: Int?
        public init(spool: String? = nil, model: String? = nil, threads: Int? = nil, memoryBudgetMB: Int? = nil, jobs: Int? = nil) {
            self.spool = spool
            self.model = model
            self.threads = threads
            self.memoryBudgetMB = memoryBudgetMB
            self.jobs = jobs
        }
    }

    /// Loads `configPath` (if any) and applies the overrides.
    public static func effectiveConfig(configPath: String?, overrides o: Overrides) throws -> DaemonConfig {
        try effectiveConfig(configPath.map { try DaemonConfig.read(path: $0) }, file: configPath ?? "-", overrides: o)
    }

    /// Parses config bytes (nil = no file) and applies the overrides.
    public static func effectiveConfig(_ data: Data?, file: String, overrides o: Overrides) throws -> DaemonConfig {
        var c = try data.map { try DaemonConfig.parse($0, file: file) } ?? DaemonConfig()
        if let v = o.spool { c.spool = v }
        if let v = o.model { c.model = v }
        if let v = o.threads { c.threads = v }
        if let v = o.memoryBudgetMB { c.memoryBudgetMB = v }
        if let v = o.jobs { c.jobs = v }
        return c
    }

    static func level(_ s: String) -> Logger.Level { Logger.Level(rawValue: s) ?? .info }

    /// Runs the daemon; prints `dmilod: error: <reason>` and returns 1 when the spool or model is unusable.
    /// `workerArguments`: the arguments a job worker is started with (before its `--job-*` ones); nil = ours without `--once`.
    public static func run(
        configPath: String?, overrides: Overrides, once: Bool, loader: @escaping RunnerLoader,
        workerArguments: [String]? = nil
    ) async -> Int32 {
        func fatal(_ reason: String) -> Int32 {
            FileHandle.standardError.write(Data("<3>dmilod: error: \(JournalLogHandler.escaped(reason))\n".utf8))
            return 1
        }
        // A job worker that dies while we write its config must not kill the daemon with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let config: DaemonConfig
        // The bytes of the config in force go to every job worker, so a worker never reads a file that a failed
        // reload left behind.
        let snapshot = ConfigSnapshot()
        do {
            let bytes = try configPath.map { try DaemonConfig.read(path: $0) }
            config = try effectiveConfig(bytes, file: configPath ?? "-", overrides: overrides)
            snapshot.data = bytes
        } catch {
            return fatal("\(error)")
        }
        LoggingSystem.bootstrap { label in
            var h = JournalLogHandler(label: label)
            h.logLevel = level(config.logLevel)
            return h
        }
        let logger = { () -> Logger in
            var l = Logger(label: "dmilod")
            l.logLevel = level(config.logLevel)
            return l
        }()
        guard let spoolPath = config.spool else { return fatal("no spool given (--spool DIR or \"spool\" in the config)") }
        let spool = Spool(root: URL(fileURLWithPath: spoolPath))
        do { try spool.prepare() } catch { return fatal("\(error)") }
        // The model is loaded (and verified) here, before READY=1, even when jobs run in worker processes: a bad
        // model stops the daemon with one line instead of failing every job.
        let inProcess: any JobRunner
        do {
            inProcess = try loader(config)
            try inProcess.prepare()
        } catch { return fatal("\(error)") }
        // Named models load on first use; a path that is not there now is worth a warning, not a refusal to start.
        for (name, path) in config.models.sorted(by: { $0.key < $1.key }) where access(path, F_OK) != 0 {
            logger.warning("model `\(name)`: \(path) does not exist (jobs naming it will fail with model.missing)")
        }
        let isolated: IsolatedRunner?
        if let exe = IsolatedRunner.currentExecutable() {
            isolated = IsolatedRunner(
                executable: exe, arguments: workerArguments ?? Array(CommandLine.arguments.dropFirst()).filter { $0 != "--once" },
                config: snapshot)
        } else {
            isolated = nil
        }
        let choose: @Sendable (DaemonConfig, any JobRunner) -> any JobRunner = { c, base in
            if c.isolateJobs, let isolated { return isolated }
            return base
        }
        let runner = choose(config, inProcess)
        if config.isolateJobs && isolated == nil { logger.warning("cannot resolve /proc/self/exe: jobs run inside the daemon") }
        for name in spool.removeStaleOutputs() { logger.notice("removed stale temporary output \(name)") }

        let notifier = SystemdNotifier(watchdog: config.watchdog)
        let daemon = SpoolDaemon(spool: spool, config: config, runner: runner, logger: logger, notifier: notifier, once: once)
        daemon.startupChecks()
        let reloadLock = NSLock()
        nonisolated(unsafe) var current = config
        let onReload: @Sendable () -> Void = {
            reloadLock.lock(); defer { reloadLock.unlock() }
            notifier.reloading()
            defer { notifier.ready() }
            do {
                let bytes = try configPath.map { try DaemonConfig.read(path: $0) }
                var next = try effectiveConfig(bytes, file: configPath ?? "-", overrides: overrides)
                if next.spool != current.spool {
                    logger.warning("reload: `spool` changes need a restart; keeping \(current.spool ?? "-")")
                    next.spool = current.spool
                }
                if next.jobs != current.jobs {
                    logger.warning("reload: `jobs` changes need a restart; keeping \(current.jobs)")
                    next.jobs = current.jobs
                }
                let newRunner = next.model != current.model || next.models != current.models ? try loader(next) : nil
                try newRunner?.prepare()
                daemon.reload(config: next, runner: newRunner.map { choose(next, $0) } ?? (next.isolateJobs != current.isolateJobs ? choose(next, inProcess) : nil))
                current = next
                snapshot.data = bytes
                logger.notice("configuration reloaded\(newRunner != nil ? " (model reloaded)" : "")")
            } catch {
                logger.error("reload failed, keeping the previous configuration: \(error)")
            }
        }
        let onStarted: @Sendable () -> Void = {
            logger.notice("dmilod started: spool \(spoolPath), model \(config.model ?? "-"), jobs \(config.jobs)\(once ? ", --once" : ""), version \(BuildVersion.description)")
            notifier.ready()
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(
                        service: DaemonService(daemon: daemon, onReload: onReload, onStarted: onStarted),
                        successTerminationBehavior: .gracefullyShutdownGroup)
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do { try await group.run() } catch {
            logger.error("service group: \(error)")
            return 1
        }
        logger.notice("dmilod stopped")
        // --once is a batch run: its exit status says whether every job it finished succeeded.
        let failed = daemon.failedJobs
        if once && failed > 0 {
            logger.notice("--once: \(failed) job(s) failed")
            return 1
        }
        return 0
    }
}
