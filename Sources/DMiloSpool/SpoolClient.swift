import DMiloFormats
import DMiloJobs
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The client side of the spool (`dmilo submit | wait | status | cancel`), built on the daemon's own layout
/// (``Spool``), name rules (``JobName``) and manifest parser (``Manifest``), so a client and the daemon cannot
/// disagree about what a job is or where it lives.
public struct SpoolClient {
    public let spool: Spool

    /// A refused request: one line for the user.
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// Opens an existing spool (the daemon creates its folders; a client never makes a spool).
    public init(root: String) throws {
        spool = Spool(root: URL(fileURLWithPath: root))
        guard FileOps.isDirectory(spool.incoming) else {
            throw Refusal("\(root) is not a spool: it has no incoming/ folder (dmilod creates the folders when it starts)")
        }
    }

    // MARK: where a job is

    public enum JobState: String, Sendable { case queued, running, done, failed }

    /// Where job `name` is now: its manifest in `incoming/`, its folder in `work/`, `done/NAME` or `failed/NAME`.
    public func state(of name: String) -> (state: JobState, path: String)? {
        if FileOps.lexists("\(spool.incoming)/\(name).json") { return (.queued, "\(spool.incoming)/\(name).json") }
        if let w = spool.workFolder(ofJob: name) { return (.running, w) }
        if FileOps.lexists("\(spool.done)/\(name)") { return (.done, "\(spool.done)/\(name)") }
        if FileOps.lexists("\(spool.failed)/\(name)") { return (.failed, "\(spool.failed)/\(name)") }
        return nil
    }

    static func checkName(_ name: String) throws {
        guard JobName.isValid(name) else {
            throw Refusal("job name `\(name)` is not [A-Za-z0-9._-]{1,128} or starts with '.'")
        }
    }

    // MARK: submit

    /// Queues the job `manifestPath` under `name` (default: the manifest's file name without `.json`): validates
    /// the manifest with the daemon's parser, stages the files it names (plain names, beside the manifest) and a copy
    /// of the manifest in a private folder in `tmp/`, then moves the data files into `incoming/` and the manifest last,
    /// each without replacing anything. Returns the job name.
    public func submit(manifest manifestPath: String, name: String?) throws -> String {
        let fileName = (manifestPath as NSString).lastPathComponent
        guard let jobName = name ?? (fileName.hasSuffix(".json") ? String(fileName.dropLast(5)) : nil) else {
            throw Refusal("\(manifestPath): a manifest's name ends in .json (or give the job's name with --name)")
        }
        try Self.checkName(jobName)
        let data: Data
        let manifest: Manifest
        do {
            data = try SafeFile.read(manifestPath, display: fileName, field: nil, maxBytes: DaemonConfig().maxManifestKB << 10)
            manifest = try Manifest.parse(data, file: fileName)
        } catch let e as JobError {
            throw Refusal("\(e.code): \(e.message)")
        }
        if let (state, path) = state(of: jobName) {
            throw Refusal(
                "job \(jobName) is already \(state == .queued || state == .running ? state.rawValue : "finished") "
                    + "(\(path)); give another name with --name NAME")
        }
        // The job's own files, read now (the same checks as the daemon's: regular file, no link, size limit).
        let folder = (manifestPath as NSString).deletingLastPathComponent
        var files: [(name: String, data: Data)] = []
        var renames: [String: String] = [:]
        for (field, ref) in manifest.fileReferences {
            switch ref {
            case .job(let n):
                if files.contains(where: { $0.name == n }) { continue }
                let source = folder.isEmpty ? n : "\(folder)/\(n)"
                let bytes: Data
                do { bytes = try SafeFile.read(source, display: source, field: field, maxBytes: SafeFile.defaultMaxBytes) } catch let e as JobError {
                    throw Refusal("\(fileName): `\(field)`: \(e.message)")
                }
                // Another queued job's file of the same name would be taken for this job's (or replaced): this job's
                // copy is queued as NAME.FILE instead, and the queued manifest's reference says so.
                var queuedName = n
                if FileOps.lexists("\(spool.incoming)/\(n)") {
                    queuedName = "\(jobName).\(n)"
                    guard JobName.isValid(queuedName), !FileOps.lexists("\(spool.incoming)/\(queuedName)") else {
                        throw Refusal(
                            "incoming/\(n) already exists (a file of another queued job) and so does incoming/\(queuedName); "
                                + "submit after that job has started")
                    }
                    renames[n] = queuedName
                }
                files.append((queuedName, bytes))
            case .calibration(let n):
                // Shared operator files stay in the spool; the job would fail with file.missing without them.
                guard FileOps.lexists("\(spool.calibration)/\(n)") else {
                    throw Refusal("\(fileName): `\(field)` names calibration/\(n), which is not in \(spool.calibration)")
                }
            }
        }
        let queuedManifest: Data
        if renames.isEmpty {
            queuedManifest = data
        } else {
            guard let rewritten = Self.renamingReferences(in: data, renames, of: manifest) else {
                throw Refusal(
                    "\(fileName): a file it names is already in incoming/ (another queued job's) and the manifest's "
                        + "references could not be renamed safely; submit after that job has started")
            }
            queuedManifest = rewritten
        }
        // Stage everything in a private folder of tmp/ (same file system as incoming/, ignored by the daemon).
        let stage = "\(spool.tmp)/.submit-\(jobName)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(stage, 0o755) == 0 else { throw Refusal("cannot create \(stage): \(FileOps.errnoText())") }
        defer { FileOps.removeTree(stage) }
        for f in files + [("\(jobName).json", queuedManifest)] { try Self.writeNew(f.1, to: "\(stage)/\(f.0)") }
        var placed: [String] = []
        func rollBack() { for n in placed { unlink("\(spool.incoming)/\(n)") } }
        for f in files {
            guard FileOps.moveNoReplace("\(stage)/\(f.name)", "\(spool.incoming)/\(f.name)") else {
                let why = errno == EEXIST ? "appeared meanwhile (another client?)" : FileOps.errnoText()
                rollBack()
                throw Refusal("cannot move \(f.name) into \(spool.incoming): \(why)")
            }
            placed.append(f.name)
        }
        // The manifest last: from this rename on the daemon sees a complete job.
        guard FileOps.moveNoReplace("\(stage)/\(jobName).json", "\(spool.incoming)/\(jobName).json") else {
            let why = errno == EEXIST ? "a job of that name was queued meanwhile" : FileOps.errnoText()
            rollBack()
            throw Refusal("cannot queue \(jobName).json: \(why)")
        }
        FileOps.fsyncPath(spool.incoming)
        return jobName
    }

    /// The manifest with the string values of its job-file references renamed by `renames`, every other byte kept;
    /// nil unless parsing the result gives exactly the original document with those references renamed (so a value
    /// that only looks like a file name, such as a built-in kernel's, is never touched unnoticed).
    static func renamingReferences(in data: Data, _ renames: [String: String], of manifest: Manifest) -> Data? {
        let bytes = Array(data)
        var out: [UInt8] = []
        var i = 0, lastSignificant: UInt8 = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b == UInt8(ascii: "\"") else {
                out.append(b)
                if b != 0x20 && b != 0x0A && b != 0x0D && b != 0x09 { lastSignificant = b }
                i += 1
                continue
            }
            var j = i + 1  // the string token runs to the first unescaped quote
            while j < bytes.count && bytes[j] != UInt8(ascii: "\"") { j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1 }
            guard j < bytes.count else { return nil }
            let token = Array(bytes[i...j])
            if lastSignificant == UInt8(ascii: ":"), case .string(let s)? = try? JSONValue.parse(Data(token)), let new = renames[s] {
                out += Array("\"\(new)\"".utf8)
            } else {
                out += token
            }
            lastSignificant = UInt8(ascii: "\"")
            i = j + 1
        }
        guard case .object(var expected)? = try? JSONValue.parse(data), let result = try? JSONValue.parse(Data(out)) else { return nil }
        for (field, ref) in manifest.fileReferences {
            guard case .job(let n) = ref, let new = renames[n] else { continue }
            if field.hasPrefix("operator.") {
                guard case .object(var op)? = expected["operator"] else { return nil }
                op[String(field.dropFirst("operator.".count))] = .string(new)
                expected["operator"] = .object(op)
            } else {
                expected[field] = .string(new)
            }
        }
        return result == .object(expected) ? Data(out) : nil
    }

    /// Writes a new file (mode 0666 less the umask, like any file a user makes) and fsyncs it.
    static func writeNew(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o666)
        guard fd >= 0 else { throw Refusal("cannot create \(path): \(FileOps.errnoText())") }
        defer { close(fd) }
        var off = 0
        while off < data.count {
            let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; throw Refusal("cannot write \(path): \(FileOps.errnoText())") }
            off += n
        }
        guard fsync(fd) == 0 else { throw Refusal("cannot write \(path): \(FileOps.errnoText())") }
    }

    // MARK: wait

    public enum WaitResult: Equatable {
        case done(String)
        case failed(String)
        case timedOut
    }

    /// Blocks until `done/NAME` or `failed/NAME` exists (inotify on both folders: the daemon publishes by renaming a
    /// finished folder into one of them), or `timeout` seconds pass (nil: no limit).
    public func wait(for name: String, timeout: Double?) throws -> WaitResult {
        try Self.checkName(name)
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        // Watch first, then look: a result published between the two is seen by the look.
        let watcher = IncomingWatcher(directories: [spool.done, spool.failed])
        while true {
            if FileOps.isDirectory("\(spool.done)/\(name)") { return .done("\(spool.done)/\(name)") }
            if FileOps.isDirectory("\(spool.failed)/\(name)") { return .failed("\(spool.failed)/\(name)") }
            let left = deadline.map { $0.timeIntervalSinceNow } ?? 3600
            if left <= 0 { return .timedOut }
            if let watcher { _ = watcher.wait(timeout: left) } else { usleep(useconds_t(min(left, 1) * 1e6)) }  // no inotify (e.g. some network file systems): look each second
        }
    }

    // MARK: status

    public struct Status {
        public var queued: [String] = []
        /// Running jobs with their progress.json (nil before the first report).
        public var running: [(job: String, progress: JobProgress?)] = []
        public var done: [String] = []
        /// Failed jobs with the code in their error.json.
        public var failed: [(job: String, error: String?)] = []

        public var jsonObject: [String: Any] {
            [
                "queued": queued.map { ["job": $0] },
                "running": running.map { ["job": $0.job, "progress": $0.progress?.jsonObject ?? NSNull()] as [String: Any] },
                "done": done.map { ["job": $0] },
                "failed": failed.map { ["job": $0.job, "error": $0.error ?? NSNull()] as [String: Any] },
            ]
        }
    }

    /// Queued jobs in the order the daemon takes them (oldest manifest first), running jobs, and the result folders
    /// in `done/` and `failed/` (oldest first).
    public func status() -> Status {
        func byAge(_ dir: String, _ names: [String]) -> [String] {
            names.map { ($0, FileOps.mtime("\(dir)/\($0)") ?? 0) }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0)
        }
        var s = Status()
        s.queued = byAge(spool.incoming, FileOps.list(spool.incoming).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") })
            .map { String($0.dropLast(5)) }
        for dir in FileOps.list(spool.work).sorted() where !dir.hasPrefix(".") {
            guard let m = FileOps.readSmall("\(spool.work)/\(dir)/.manifest"), m.hasSuffix(".json") else { continue }
            let progress = Self.progressFile(jobDirectory: "\(spool.work)/\(dir)", manifestFile: m)
            s.running.append((String(m.dropLast(5)), progress))
        }
        s.done = byAge(spool.done, FileOps.list(spool.done).filter { !$0.hasPrefix(".") })
        s.failed = byAge(spool.failed, FileOps.list(spool.failed).filter { !$0.hasPrefix(".") }).map { name in
            let error =
                (try? SafeFileRead.small("\(spool.failed)/\(name)/error.json"))
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }?["error"] as? String
            return (name, error)
        }
        return s
    }

    static func progressFile(jobDirectory: String, manifestFile: String) -> JobProgress? {
        guard let path = Spool.progressFile(jobDirectory: jobDirectory, manifestFile: manifestFile),
            let data = try? SafeFileRead.small(path),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return JobProgress(jsonObject: obj)
    }

    // MARK: cancel

    /// Creates `cancel/NAME`; returns where the job was (nil: neither queued nor running now). A finished job is refused.
    public func cancel(_ name: String) throws -> JobState? {
        try Self.checkName(name)
        let where_ = state(of: name)
        if let (state, path) = where_, state == .done || state == .failed {
            throw Refusal("job \(name) has already finished (\(path)); nothing to cancel")
        }
        if !FileOps.isDirectory(spool.cancel) && mkdir(spool.cancel, 0o2775) != 0 && errno != EEXIST {
            throw Refusal("cannot create \(spool.cancel): \(FileOps.errnoText())")
        }
        let fd = open("\(spool.cancel)/\(name)", O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o666)
        guard fd >= 0 else { throw Refusal("cannot create \(spool.cancel)/\(name): \(FileOps.errnoText())") }
        close(fd)
        return where_?.state
    }
}
