import DMiloJobs
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The config file's bytes currently in force (updated by a successful SIGHUP reload).
public final class ConfigSnapshot: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: Data?
    public init() {}
    public var data: Data? {
        get { lock.lock(); defer { lock.unlock() }; return bytes }
        set { lock.lock(); bytes = newValue; lock.unlock() }
    }
}

/// Runs one job in a child process (`dmilod … --job-worker DIR --job-output DIR`): the same executable and
/// arguments as the daemon, so it loads the same runner. A job that aborts, overflows its stack or is OOM-killed
/// takes only its child down; the daemon and the other running jobs carry on.
///
/// The child reports on file descriptor 3, one line per message (see ``JobWorker``):
/// `P\t<fraction>\t<note>` for progress and `R\t<JSON>` for the result. Cancellation is SIGTERM.
public struct IsolatedRunner: JobRunner {
    /// The executable and the daemon's own arguments (without `--once`); the job's are appended.
    public var executable: String
    public var arguments: [String]
    /// Seconds a cancelled child gets to stop before SIGKILL.
    public var cancelGrace = 10.0

    /// The config bytes in force (sent on the worker's stdin); nil data = no config file.
    public var config: ConfigSnapshot

    public init(executable: String, arguments: [String], config: ConfigSnapshot = ConfigSnapshot()) {
        self.executable = executable
        self.arguments = arguments
        self.config = config
    }

    /// A job whose worker died: `status` is the wait status (signal or exit code) in words.
    public struct WorkerDied: Error, CustomStringConvertible {
        public var status: String
        public var description: String { "worker process \(status)" }
    }

    /// Peak RSS (bytes) of the last child this thread waited for; the daemon's metrics read it.
    nonisolated(unsafe) static var lastPeakRSS: [UInt: Int] = [:]
    static let rssLock = NSLock()
    static let spawnLock = NSLock()
    public static func takePeakRSS() -> Int? {
        rssLock.lock(); defer { rssLock.unlock() }
        return lastPeakRSS.removeValue(forKey: threadKey)
    }
    static var threadKey: UInt { UInt(bitPattern: Int(pthread_self())) }

    public func run(job: ClaimedJob, outputDirectory: URL, control: JobControl) throws -> JobOutcome {
        var fds: [Int32] = [-1, -1]
        // pipe + FD_CLOEXEC + spawn under one lock: no other worker's child may inherit this pipe's write end
        // (it would hold our EOF back until it exits). Glibc's pipe2 is not visible to Swift.
        Self.spawnLock.lock()
        var locked = true
        defer { if locked { Self.spawnLock.unlock() } }
        guard pipe(&fds) == 0 else {
            throw JobError(code: JobError.internalError, message: "cannot create a pipe for the job worker: \(FileOps.errnoText())")
        }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // fd 3 in the child = the pipe's write end (dup2 clears O_CLOEXEC on the copy only).
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        // stdin = a pipe carrying the config bytes in force.
        var cfgPipe: [Int32] = [-1, -1]
        guard pipe(&cfgPipe) == 0 else {
            close(fds[0]); close(fds[1])
            throw JobError(code: JobError.internalError, message: "cannot create a pipe for the job worker: \(FileOps.errnoText())")
        }
        _ = fcntl(cfgPipe[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(cfgPipe[1], F_SETFD, FD_CLOEXEC)
        posix_spawn_file_actions_adddup2(&actions, cfgPipe[0], STDIN_FILENO)
        let args =
            [executable] + arguments + [
                "--job-worker", job.jobDirectory.path, "--job-output", outputDirectory.path,
                "--job-manifest", "\(job.name).json",
            ]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        // The child learns our pid (it exits when we die, so a kill -9'd daemon leaves no worker writing into a
        // folder the next daemon reuses) and, unless the operator asked for them, prints no multi-line Swift
        // backtraces into the journal (the daemon logs one line per dead worker).
        var env = ProcessInfo.processInfo.environment
        env[JobWorker.parentEnv] = "\(getpid())"
        let configBytes = config.data
        env[JobWorker.configEnv] = configBytes == nil ? "none" : "stdin"
        if env["SWIFT_BACKTRACE"] == nil { env["SWIFT_BACKTRACE"] = "enable=no" }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        close(fds[1])
        close(cfgPipe[0])
        Self.spawnLock.unlock()
        locked = false
        if rc == 0, let bytes = configBytes {
            // At most 1 MiB; the worker reads all of it before anything else. SIGPIPE is ignored by the daemon
            // (a worker that died early only makes this write fail).
            bytes.withUnsafeBytes { buf in
                var off = 0
                while off < buf.count {
                    let n = write(cfgPipe[1], buf.baseAddress! + off, buf.count - off)
                    if n < 0 { if errno == EINTR { continue }; break }
                    off += n
                }
            }
        }
        close(cfgPipe[1])
        guard rc == 0 else {
            close(fds[0])
            throw JobError(code: JobError.internalError, message: "cannot start the job worker \(executable): \(String(cString: strerror(rc)))")
        }
        defer { close(fds[0]) }

        var buffer = [UInt8]()
        var result: String?
        var termSentAt: Date?
        var lastTerm: Date?
        var chunk = [UInt8](repeating: 0, count: 4096)
        readLoop: while true {
            if control.isCancelled {
                // SIGTERM again every half second: a worker still starting up may not have its handler yet
                // (it ignores SIGTERM for a moment while installing it).
                if termSentAt == nil { termSentAt = Date() }
                if let t = termSentAt {
                    let waited = Date().timeIntervalSince(t)
                    if waited > cancelGrace { kill(pid, SIGKILL) } else if lastTerm.map({ Date().timeIntervalSince($0) >= 0.5 }) ?? true { kill(pid, SIGTERM); lastTerm = Date() }
                }
            }
            var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, 100)
            if r < 0 { if errno == EINTR { continue }; break }
            if r == 0 { continue }
            let n = read(fds[0], &chunk, chunk.count)
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; break }
            if n == 0 { break }
            buffer.append(contentsOf: chunk[0..<n])
            while let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                let parts = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
                if parts.first == "P", parts.count == 3, let f = Double(parts[1]) {
                    control.progress(f, parts[2])
                } else if parts.first == "R", parts.count >= 2 {
                    result = parts.dropFirst().joined(separator: "\t")
                }
            }
            if buffer.count > 1 << 20 { kill(pid, SIGKILL); break readLoop }  // a worker flooding the pipe is broken
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        Self.rssLock.lock(); Self.lastPeakRSS[Self.threadKey] = usage.ru_maxrss * 1024; Self.rssLock.unlock()
        let signalled = (status & 0x7f) != 0
        if let text = result, let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
            switch obj["status"] as? String {
            case "done":
                return JobOutcome(
                    method: obj["method"] as? String ?? "", unetEvaluations: obj["unet_evaluations"] as? Int ?? 0,
                    psnr: obj["psnr"] as? Double, summary: obj["summary"] as? String ?? "")
            case "cancelled":
                throw JobCancelled()
            case "error":
                throw JobError(
                    code: obj["code"] as? String ?? JobError.internalError,
                    message: obj["message"] as? String ?? "", field: obj["field"] as? String)
            default: break
            }
        }
        if termSentAt != nil { throw JobCancelled() }  // stopped by us before it could answer
        let how =
            signalled
            ? "was killed by signal \(status & 0x7f) (\(String(cString: strsignal(status & 0x7f))))"
            : "exited with status \((status >> 8) & 0xff) without a result"
        throw WorkerDied(status: how)
    }

    /// This executable's absolute path.
    public static func currentExecutable() -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
