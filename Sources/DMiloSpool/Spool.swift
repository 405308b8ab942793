import DMiloJobs
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The spool folder protocol (docs/INTERFACE.md "The spool").
///
/// Claiming: the claimer makes a fresh folder `work/NAME` (mkdir is exclusive), takes an flock on
/// `work/NAME/.lock`, then renames `incoming/NAME.json` into it. rename(2) of one source succeeds for exactly
/// one caller, so a second daemon on the same spool gets ENOENT and drops its empty folder: no job runs twice.
/// The flock is held while the job runs and dies with the process, which is how a restarted (or second)
/// daemon tells an orphan of a crashed daemon (lock free) from a live job (lock held).
///
/// Bookkeeping files in `work/NAME/` start with `.` (job files never do): `.lock`, `.manifest` (the manifest's
/// file name), `.attempts` (runs started, fsynced before each run), `.final` (`done` or `failed`: publication
/// has started, so after a crash it is completed instead of re-running the job) and `.published` (where it went).
public final class Spool: @unchecked Sendable {
    public let root: URL
    public var incoming: String { root.appendingPathComponent("incoming").path }
    public var work: String { root.appendingPathComponent("work").path }
    public var done: String { root.appendingPathComponent("done").path }
    public var failed: String { root.appendingPathComponent("failed").path }
    public var tmp: String { root.appendingPathComponent("tmp").path }
    public var calibration: String { root.appendingPathComponent("calibration").path }
    /// `cancel/NAME`: a client's request to cancel job NAME (see CancelRequests.swift).
    public var cancel: String { root.appendingPathComponent("cancel").path }

    public init(root: URL) { self.root = root }

    /// Creates missing folders (not `calibration/`, which is the operator's) and checks access.
    public func prepare() throws {
        guard FileOps.isDirectory(root.path) else {
            throw SpoolError("spool \(root.path) is not a directory")
        }
        for dir in [incoming, work, done, failed, tmp, cancel] {
            if !FileOps.isDirectory(dir) {
                if mkdir(dir, 0o2775) != 0 && errno != EEXIST {
                    throw SpoolError("cannot create \(dir): \(FileOps.errnoText())")
                }
                guard FileOps.isDirectory(dir) else { throw SpoolError("\(dir) is not a directory") }
            }
            guard access(dir, R_OK | W_OK | X_OK) == 0 else {
                throw SpoolError("spool folder \(dir) is not readable and writable: \(FileOps.errnoText())")
            }
        }
    }

    // MARK: incoming

    /// A manifest seen in `incoming/`.
    public struct Candidate: Sendable {
        /// File name in `incoming/` (`NAME.json`).
        public var manifestFile: String
        /// Job name (may be invalid; such jobs fail with `manifest.invalid`).
        public var name: String
        /// Parsed manifest, or the error that makes the job fail.
        public var manifest: Manifest?
        public var error: JobError?
        /// Files named by the manifest that are not present yet.
        public var missing: [String]
        public var mtime: Double
        /// The file name's bytes when they are not UTF-8 (`manifestFile` is then a readable stand-in).
        public var rawName: [UInt8]? = nil
    }

    /// Manifests in `incoming/` (dot-files ignored), oldest first.
    public func scanIncoming(maxManifestBytes: Int) -> [Candidate] {
        var out: [Candidate] = []
        // Names that are not UTF-8 cannot be opened through a String path: they are claimed by their bytes and
        // failed with `manifest.invalid` (the job folder gets a sanitized name).
        for raw in FileOps.listRaw(incoming) where String(validatingUTF8: raw.map { CChar(bitPattern: $0) } + [0]) == nil {
            guard raw.count > 5, raw.suffix(5).elementsEqual(".json".utf8), raw.first != 0x2E else { continue }
            let shown = raw.dropLast(5).map { b -> String in
                (0x20..<0x7F).contains(b) && b != 0x5C ? String(UnicodeScalar(b)) : String(format: "\\x%02x", b)
            }.joined()
            out.append(
                Candidate(
                    manifestFile: "\(shown).json", name: shown, manifest: nil,
                    error: JobError.manifest("manifest file name `\(shown).json` is not valid UTF-8"),
                    missing: [], mtime: 0, rawName: raw))
        }
        for file in FileOps.list(incoming) where file.hasSuffix(".json") && !file.hasPrefix(".") {
            let path = "\(incoming)/\(file)"
            if !FileOps.lexists(path) { continue }  // a lossy decoding of a non-UTF-8 name (handled above)
            let name = String(file.dropLast(5))
            var c = Candidate(
                manifestFile: file, name: name, manifest: nil, error: nil, missing: [],
                mtime: FileOps.mtime(path) ?? 0)
            do {
                let data = try SafeFile.read(path, display: file, field: nil, maxBytes: maxManifestBytes)
                if !JobName.isValid(name) {
                    throw JobError.manifest("\(file): job name `\(name)` is not [A-Za-z0-9._-]{1,128} or starts with '.'")
                }
                let m = try Manifest.parse(data, file: file)
                c.manifest = m
                for (_, ref) in m.fileReferences {
                    let p: String
                    switch ref {
                    case .job(let n): p = "\(incoming)/\(n)"
                    case .calibration(let n): p = "\(calibration)/\(n)"
                    }
                    if !FileOps.lexists(p) { c.missing.append(ref.description) }
                }
            } catch let e as JobError {
                if e.code == JobError.fileMissing { continue }  // vanished meanwhile (claimed by another daemon)
                c.error =
                    e.code == JobError.fileUnreadable
                    ? JobError.manifest("manifest \(e.message)") : e
            } catch {
                c.error = JobError.manifest("\(file): \(error)")
            }
            out.append(c)
        }
        return out.sorted { ($0.mtime, $0.manifestFile) < ($1.mtime, $1.manifestFile) }
    }

    // MARK: claim

    /// A job folder in `work/` whose lock this process holds.
    public final class WorkJob: @unchecked Sendable {
        public let dirName: String
        public let path: String
        /// Job name as given (manifest file name without `.json`).
        public let name: String
        public let manifestFile: String
        fileprivate var lockFD: Int32
        /// The name as the client wrote it when that was not UTF-8 (escaped); for error.json's `job`.
        public var displayName: String?

        /// Why the job's manifest file name is unusable (not UTF-8), recorded at claim time; nil if fine.
        public var invalidName: String? { FileOps.readSmall("\(path)/.invalid-name") }

        init(dirName: String, path: String, name: String, manifestFile: String, lockFD: Int32) {
            self.dirName = dirName
            self.path = path
            self.name = name
            self.manifestFile = manifestFile
            self.lockFD = lockFD
        }

        deinit { if lockFD >= 0 { close(lockFD) } }

        /// Job files (everything not starting with `.`).
        public var files: [String] { FileOps.list(path).filter { !$0.hasPrefix(".") } }
    }

    /// Opens and exclusively flocks `dir/.lock` without blocking; nil if another live process holds it.
    private func lock(_ dir: String, create: Bool) -> Int32? {
        let fd = open("\(dir)/.lock", O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0o640)
        guard fd >= 0 else { return nil }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 { close(fd); return nil }
        return fd
    }

    /// Claims a candidate: nil if another claimer won (or the manifest vanished).
    public func claim(_ c: Candidate) -> WorkJob? {
        var ignored: String?
        return claim(c, failure: &ignored)
    }

    /// As ``claim(_:)``; `failure` says why a claim failed for a reason other than losing the race (e.g. a full disk).
    public func claim(_ c: Candidate, failure: inout String?) -> WorkJob? {
        let base = JobName.isValid(c.name) ? c.name : JobName.sanitized(c.name)
        let dirName: String
        do { dirName = try FileOps.makeUniqueDirectory(in: work, base: base, separator: "~") } catch {
            failure = "\(error)"
            return nil
        }
        let dir = "\(work)/\(dirName)"
        guard let fd = lock(dir, create: true) else {
            failure = "cannot create \(dir)/.lock: \(FileOps.errnoText())"
            rmdir(dir)
            return nil
        }
        func abandon() -> WorkJob? {
            unlink("\(dir)/.manifest"); unlink("\(dir)/.lock"); rmdir(dir); close(fd)
            return nil
        }
        let manifestFile = c.rawName == nil ? c.manifestFile : "\(base).json"
        do { try FileOps.writeAtomically(Data(manifestFile.utf8), to: "\(dir)/.manifest") } catch {
            failure = "\(error)"
            return abandon()
        }
        // The claim itself: exactly one rename of incoming/NAME.json succeeds.
        if let raw = c.rawName {
            guard FileOps.renameRaw(dir: incoming, name: raw, to: "\(dir)/\(manifestFile)") else { return abandon() }
            try? FileOps.writeAtomically(Data("manifest file name `\(c.manifestFile)` is not valid UTF-8".utf8), to: "\(dir)/.invalid-name")
        } else {
            guard rename("\(incoming)/\(c.manifestFile)", "\(dir)/\(c.manifestFile)") == 0 else { return abandon() }
        }
        // A requeued job's attempt count waits in work/.attempts/NAME (daemon-owned; never read from incoming/).
        if JobName.isValid(c.name) { rename("\(attemptsStore)/\(c.name)", "\(dir)/.attempts") }
        var files: [String] = []
        if let m = c.manifest {
            for (_, ref) in m.fileReferences { if case .job(let n) = ref { files.append(n) } }
        } else if let data = try? SafeFile.read("\(dir)/\(c.manifestFile)", display: c.manifestFile, field: nil, maxBytes: 1 << 20) {
            files = Manifest.bestEffortJobFiles(data)
        }
        for n in files {
            rename("\(incoming)/\(n)", "\(dir)/\(n)")
        }
        FileOps.fsyncPath(dir)
        FileOps.fsyncPath(incoming)
        let job = WorkJob(dirName: dirName, path: dir, name: c.rawName == nil ? c.name : base, manifestFile: manifestFile, lockFD: fd)
        if c.rawName != nil { job.displayName = c.name }
        return job
    }

    /// Outcome of looking at a `work/` folder nobody holds.
    public enum Orphan {
        /// A job to (re)run.
        case job(WorkJob)
        /// Publication had started (`.final`): finish it rather than run the job again. The payload is
        /// `done` or `failed`.
        case publishing(WorkJob, String)
    }

    /// Folders in `work/` whose owner died (lock free): jobs of a crashed daemon, or left by a stopping one.
    public func orphans() -> [Orphan] {
        var out: [Orphan] = []
        for dirName in FileOps.list(work).sorted() where !dirName.hasPrefix(".") {
            let dir = "\(work)/\(dirName)"
            guard FileOps.isDirectory(dir) else { continue }
            // A claimer creates `.lock` and flocks it before it moves anything in, so a free pre-existing lock
            // with no manifest means a claim that died (or lost) before its rename: nothing in it to keep.
            let hadLock = FileOps.lexists("\(dir)/.lock")
            guard let fd = lock(dir, create: true) else { continue }
            let manifestFile = FileOps.readSmall("\(dir)/.manifest") ?? ""
            let publishing = FileOps.readSmall("\(dir)/.final")
            let hasManifest = !manifestFile.isEmpty && !manifestFile.contains("/") && FileOps.lexists("\(dir)/\(manifestFile)")
            if !hasManifest && publishing == nil {
                let jobFiles = FileOps.list(dir).filter { !$0.hasPrefix(".") }
                let stale = hadLock || (FileOps.mtime(dir).map { Date().timeIntervalSince1970 - $0 > 30 } ?? false)
                if jobFiles.isEmpty && stale {
                    for f in FileOps.list(dir) where f != ".lock" { unlink("\(dir)/\(f)") }
                    unlink("\(dir)/.lock")
                    rmdir(dir)
                }
                close(fd)
                continue
            }
            let name = manifestFile.hasSuffix(".json") ? String(manifestFile.dropLast(5)) : dirName
            let job = WorkJob(dirName: dirName, path: dir, name: name, manifestFile: manifestFile, lockFD: fd)
            if let p = publishing, p == "done" || p == "failed" {
                out.append(.publishing(job, p))
            } else {
                unlink("\(dir)/.final")
                out.append(.job(job))
            }
        }
        return out
    }

    // MARK: attempts

    public func attempts(of job: WorkJob) -> Int {
        max(0, FileOps.readSmall("\(job.path)/.attempts").flatMap { Int($0) } ?? 0)
    }

    /// `work/.attempts/`: attempt counts of requeued jobs, by job name. Inside the daemon's `work/` (clients drop
    /// into `incoming/` only), so a client cannot reset or forge the count that stops a crashing job.
    public var attemptsStore: String { "\(work)/.attempts" }

    /// Durably records the attempt count (before the run it counts).
    public func setAttempts(_ n: Int, of job: WorkJob) throws {
        try FileOps.writeAtomically(Data("\(n)\n".utf8), to: "\(job.path)/.attempts")
    }

    // MARK: results

    /// The private folder a runner writes into; left-overs of a crashed attempt are derived outputs and removed.
    public func outputFolder(for job: WorkJob, failed isFailure: Bool) throws -> String {
        let parent = isFailure ? failed : done
        let path = "\(parent)/.tmp-\(job.dirName)"
        if FileOps.lexists(path) { FileOps.removeTree(path) }
        guard mkdir(path, 0o750) == 0 else { throw SpoolError("cannot create \(path): \(FileOps.errnoText())") }
        return path
    }

    /// Publishes a job: marks `.final` (publication started), moves the job's files into `output` beside
    /// the results, fsyncs, renames `output` to `done/NAME` (or `failed/NAME`; `NAME.1`, `NAME.2`, … when taken)
    /// and removes the `work/` folder. The published folder always holds the manifest, so it is never empty and
    /// rename(2) can never replace another job's folder. Safe to call again after a crash at any point.
    @discardableResult
    public func publish(_ job: WorkJob, failed isFailure: Bool) throws -> String {
        let parentName = isFailure ? "failed" : "done"
        let parent = isFailure ? failed : done
        let output = "\(parent)/.tmp-\(job.dirName)"
        discardProgress(job)
        if FileOps.readSmall("\(job.path)/.final") != parentName {
            try FileOps.writeAtomically(Data(parentName.utf8), to: "\(job.path)/.final")
        }
        if FileOps.isDirectory(output) {
            for f in job.files {
                var dst = "\(output)/\(f)"
                // An input named like an output (e.g. `metrics.json`) keeps both: the input gets an `input.` prefix.
                if FileOps.lexists(dst) { dst = "\(output)/input.\(f)" }
                if !FileOps.moveNoReplace("\(job.path)/\(f)", dst) {
                    throw SpoolError("cannot move \(job.path)/\(f) to \(dst): \(FileOps.errnoText())")
                }
            }
            FileOps.fsyncFolder(output)
            let base = JobName.isValid(job.name) ? job.name : JobName.sanitized(job.name)
            var published: String?
            for i in 0..<10_000 {
                let candidate = "\(parent)/\(i == 0 ? base : "\(base).\(i)")"
                if rename(output, candidate) == 0 { published = candidate; break }
                if errno != ENOTEMPTY && errno != EEXIST && errno != ENOTDIR && errno != EISDIR {
                    throw SpoolError("cannot rename \(output) to \(candidate): \(FileOps.errnoText())")
                }
            }
            guard let final = published else { throw SpoolError("no free name for \(base) in \(parent)") }
            FileOps.fsyncPath(parent)
            try FileOps.writeAtomically(
                Data("\(parentName)/\((final as NSString).lastPathComponent)".utf8),
                to: "\(job.path)/.published")
        }
        // No output folder left: the rename already happened (before a crash); `.published` says where.
        let final = FileOps.readSmall("\(job.path)/.published").map { root.appendingPathComponent($0).path } ?? parent
        removeWorkFolder(job)
        return final
    }

    private func removeWorkFolder(_ job: WorkJob) {
        for f in [".final", ".published", ".attempts", ".manifest", ".invalid-name", JobControl.progressTempName] {
            unlink("\(job.path)/\(f)")
        }
        unlink("\(job.path)/.lock")
        if rmdir(job.path) == 0 { FileOps.fsyncPath(work) }
        close(job.lockFD)
        job.lockFD = -1
    }

    /// Writes `error.json` into a fresh `failed/` output folder and publishes it.
    @discardableResult
    public func fail(_ job: WorkJob, error: JobError) throws -> String {
        // Outputs of an attempt that died (job.crashed) are derived files: never left behind as done/.tmp-NAME.
        FileOps.removeTree("\(done)/.tmp-\(job.dirName)")
        let out = try outputFolder(for: job, failed: true)
        var obj: [String: Any] = ["job": job.displayName ?? job.name, "error": error.code, "message": error.message]
        if let f = error.field { obj["field"] = f }
        try writeErrorJSON(obj, into: out)
        return try publish(job, failed: true)
    }

    /// Writes `error.json` into a fresh output folder. Nothing of the job is in `out` yet, so on failure it is
    /// removed: a full disk leaves no partial failed/.tmp-NAME.
    func writeErrorJSON(_ obj: [String: Any], into out: String) throws {
        do {
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            try FileOps.writeAtomically(data + Data("\n".utf8), to: "\(out)/error.json")
        } catch {
            FileOps.removeTree(out)
            throw SpoolError("cannot write \(out)/error.json: \(error)")
        }
    }

    /// Puts a job back into `incoming/` (graceful stop): data files first, the manifest last, each without
    /// replacing anything; its attempt count goes to `incoming/.NAME.attempts`. Returns false if something
    /// would collide; the job then stays in `work/` (unlocked) and is picked up as an orphan later.
    public func requeue(_ job: WorkJob, attempts: Int) -> Bool {
        if let out = Optional("\(done)/.tmp-\(job.dirName)"), FileOps.lexists(out) { FileOps.removeTree(out) }
        discardProgress(job)
        let files = job.files.filter { $0 != job.manifestFile }
        if FileOps.lexists("\(incoming)/\(job.manifestFile)") || files.contains(where: { FileOps.lexists("\(incoming)/\($0)") }) {
            return false
        }
        guard JobName.isValid(job.name), job.invalidName == nil else { return false }
        if attempts > 0 {
            if mkdir(attemptsStore, 0o750) != 0 && errno != EEXIST { return false }
            guard (try? FileOps.writeAtomically(Data("\(attempts)\n".utf8), to: "\(attemptsStore)/\(job.name)")) != nil else { return false }
        } else {
            unlink("\(attemptsStore)/\(job.name)")
        }
        for f in files where !FileOps.moveNoReplace("\(job.path)/\(f)", "\(incoming)/\(f)") { return false }
        guard FileOps.moveNoReplace("\(job.path)/\(job.manifestFile)", "\(incoming)/\(job.manifestFile)") else { return false }
        FileOps.fsyncPath(incoming)
        removeWorkFolder(job)
        return true
    }

    /// True when `bytes` can be written (and fsynced) in `tmp/`: the disk-full state's probe.
    public func probeFreeSpace(bytes: Int) -> Bool {
        let path = "\(tmp)/.dmilod-probe-\(getpid())"
        defer { unlink(path) }
        return (try? FileOps.writeAtomically(Data(repeating: 0x55, count: bytes), to: path)) != nil
    }

    /// Removes `done/.tmp-X` and `failed/.tmp-X` output folders whose `work/X` is gone (left by a crash between
    /// creating the folder and publishing); returns their names.
    @discardableResult
    public func removeStaleOutputs() -> [String] {
        var removed: [String] = []
        for parent in [done, failed] {
            for name in FileOps.list(parent) where name.hasPrefix(".tmp-") {
                let dirName = String(name.dropFirst(5))
                if !FileOps.lexists("\(work)/\(dirName)") {
                    FileOps.removeTree("\(parent)/\(name)")
                    removed.append(name)
                }
            }
        }
        return removed
    }

    /// Removes data files in `incoming/` that no manifest there names and that have not changed (mtime and ctime)
    /// for `age` seconds
    /// (their manifest never arrived, could not be parsed, or named other files). Returns the names removed.
    public func removeStaleFiles(olderThan age: Double, candidates: [Candidate]) -> [String] {
        var referenced = Set<String>()
        for c in candidates {
            guard let m = c.manifest else { continue }
            for (_, ref) in m.fileReferences { if case .job(let n) = ref { referenced.insert(n) } }
        }
        let now = Date().timeIntervalSince1970
        var removed: [String] = []
        for raw in FileOps.listRaw(incoming) {
            guard raw.first != 0x2E, !raw.suffix(5).elementsEqual(".json".utf8) else { continue }
            let name = String(decoding: raw, as: UTF8.self)
            if referenced.contains(name) { continue }
            var path = Array(incoming.utf8) + [0x2F] + raw + [0]
            let old = path.withUnsafeMutableBufferPointer { buf -> Bool in
                buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { p -> Bool in
                    var st = stat()
                    guard lstat(p, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR else { return false }
                    // ctime, not mtime: a client may keep an old mtime (`cp -p`, `rsync -t`), but the rename into
                    // incoming/ sets ctime, and nobody can set it back.
                    guard now - Double(max(st.st_mtim.tv_sec, st.st_ctim.tv_sec)) > age else { return false }
                    return unlink(p) == 0
                }
            }
            if old { removed.append(name) }
        }
        return removed
    }

    /// Releases the lock without touching the folder (the job stays in `work/` as an orphan).
    public func release(_ job: WorkJob) {
        if job.lockFD >= 0 { close(job.lockFD); job.lockFD = -1 }
    }
}
