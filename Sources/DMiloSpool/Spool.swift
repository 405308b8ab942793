import DMiloJobs
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why the spool cannot be used (the daemon exits non-zero with this one line).
public struct SpoolError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The spool folder protocol (INTERFACE.md "Spool layout").
///
/// Claiming: the claimer makes a fresh folder `work/NAME` (mkdir is exclusive), takes an flock on
/// `work/NAME/.lock`, then renames `incoming/NAME.json` into it. rename(2) of one source succeeds for exactly
/// one caller, so a second daemon on the same spool gets ENOENT and drops its empty folder: no job runs twice.
/// The flock is held while the job runs and dies with the process, which is how a restarted (or second)
/// daemon tells an orphan of a crashed daemon (lock free) from a live job (lock held).
///
/// Bookkeeping files in `work/NAME/` start with `.` (job files never do): `.lock`, `.manifest` (the manifest's
/// file name), `.attempts` (runs started, fsynced before each run), `.final` (the `done/`/`failed/` folder the
/// results were renamed to, written just before that rename so a crash there is finished, not re-run).
public final class Spool: @unchecked Sendable {
    public let root: URL
    public var incoming: String { root.appendingPathComponent("incoming").path }
    public var work: String { root.appendingPathComponent("work").path }
    public var done: String { root.appendingPathComponent("done").path }
    public var failed: String { root.appendingPathComponent("failed").path }
    public var tmp: String { root.appendingPathComponent("tmp").path }
    public var calibration: String { root.appendingPathComponent("calibration").path }

    public init(root: URL) { self.root = root }

    /// Creates missing folders (not `calibration/`, which is the operator's) and checks access.
    public func prepare() throws {
        guard FileOps.isDirectory(root.path) else {
            throw SpoolError("spool \(root.path) is not a directory")
        }
        for dir in [incoming, work, done, failed, tmp] {
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
    }

    /// Manifests in `incoming/` (dot-files ignored), oldest first.
    public func scanIncoming(maxManifestBytes: Int) -> [Candidate] {
        var out: [Candidate] = []
        for file in FileOps.list(incoming) where file.hasSuffix(".json") && !file.hasPrefix(".") {
            let path = "\(incoming)/\(file)"
            let name = String(file.dropLast(5))
            var c = Candidate(manifestFile: file, name: name, manifest: nil, error: nil, missing: [],
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
                c.error = e.code == JobError.fileUnreadable
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
        let base = JobName.isValid(c.name) ? c.name : JobName.sanitized(c.name)
        guard let dirName = try? FileOps.makeUniqueDirectory(in: work, base: base, separator: "~") else { return nil }
        let dir = "\(work)/\(dirName)"
        guard let fd = lock(dir, create: true) else { rmdir(dir); return nil }
        func abandon() -> WorkJob? {
            unlink("\(dir)/.manifest"); unlink("\(dir)/.lock"); rmdir(dir); close(fd)
            return nil
        }
        guard (try? FileOps.writeAtomically(Data(c.manifestFile.utf8), to: "\(dir)/.manifest")) != nil else { return abandon() }
        // The claim itself: exactly one rename of incoming/NAME.json succeeds.
        guard rename("\(incoming)/\(c.manifestFile)", "\(dir)/\(c.manifestFile)") == 0 else { return abandon() }
        // A requeued job carries its attempt count in a dot-file beside it.
        rename("\(incoming)/.\(c.name).attempts", "\(dir)/.attempts")
        if let m = c.manifest {
            for (_, ref) in m.fileReferences {
                if case .job(let n) = ref, n != c.manifestFile { rename("\(incoming)/\(n)", "\(dir)/\(n)") }
            }
        }
        FileOps.fsyncPath(dir)
        FileOps.fsyncPath(incoming)
        return WorkJob(dirName: dirName, path: dir, name: c.name, manifestFile: c.manifestFile, lockFD: fd)
    }

    /// Outcome of looking at a `work/` folder nobody holds.
    public enum Orphan {
        /// A job to (re)run.
        case job(WorkJob)
        /// Results were already renamed into place; only the input move and cleanup were left.
        case finished(WorkJob, String)
    }

    /// Folders in `work/` whose owner died (lock free): jobs of a crashed daemon, or requeued by a stopping one.
    public func orphans() -> [Orphan] {
        var out: [Orphan] = []
        for dirName in FileOps.list(work).sorted() where !dirName.hasPrefix(".") {
            let dir = "\(work)/\(dirName)"
            guard FileOps.isDirectory(dir), let fd = lock(dir, create: true) else { continue }
            guard let manifestFile = FileOps.readSmall("\(dir)/.manifest"), !manifestFile.isEmpty,
                  !manifestFile.contains("/"), FileOps.lexists("\(dir)/\(manifestFile)") || FileOps.lexists("\(dir)/.final")
            else {
                // A claim that died before its rename: only bookkeeping inside. Remove it once clearly stale.
                let jobFiles = FileOps.list(dir).filter { !$0.hasPrefix(".") }
                if jobFiles.isEmpty, let t = FileOps.mtime(dir), Date().timeIntervalSince1970 - t > 30 {
                    for f in FileOps.list(dir) { unlink("\(dir)/\(f)") }
                    rmdir(dir)
                }
                close(fd)
                continue
            }
            let name = String(manifestFile.dropLast(manifestFile.hasSuffix(".json") ? 5 : 0))
            let job = WorkJob(dirName: dirName, path: dir, name: name, manifestFile: manifestFile, lockFD: fd)
            if let final = FileOps.readSmall("\(dir)/.final"), !final.isEmpty, !final.contains(".."),
               FileOps.isDirectory(root.appendingPathComponent(final).path) {
                out.append(.finished(job, root.appendingPathComponent(final).path))
            } else {
                unlink("\(dir)/.final")
                out.append(.job(job))
            }
        }
        return out
    }

    // MARK: attempts

    public func attempts(of job: WorkJob) -> Int {
        FileOps.readSmall("\(job.path)/.attempts").flatMap { Int($0) } ?? 0
    }

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

    /// Publishes `output` as `done/NAME` (or `failed/NAME`; `.1`, `.2`, … if taken, never overwriting), moves the
    /// job's files in beside the results, then removes the `work/` folder. Returns the final folder path.
    @discardableResult
    public func publish(_ job: WorkJob, output: String, failed isFailure: Bool) throws -> String {
        let parent = isFailure ? failed : done
        let parentName = isFailure ? "failed" : "done"
        FileOps.fsyncFolder(output)
        let base = JobName.isValid(job.name) ? job.name : JobName.sanitized(job.name)
        // Reserve the name with an exclusive mkdir; rename(2) then replaces that empty folder atomically.
        let finalName = try FileOps.makeUniqueDirectory(in: parent, base: base)
        try FileOps.writeAtomically(Data("\(parentName)/\(finalName)".utf8), to: "\(job.path)/.final")
        guard rename(output, "\(parent)/\(finalName)") == 0 else {
            let e = FileOps.errnoText()
            rmdir("\(parent)/\(finalName)")
            unlink("\(job.path)/.final")
            throw SpoolError("cannot rename \(output) to \(parent)/\(finalName): \(e)")
        }
        FileOps.fsyncPath(parent)
        let final = "\(parent)/\(finalName)"
        try finish(job, into: final)
        return final
    }

    /// Moves the job's files into its published folder and removes the `work/` folder.
    public func finish(_ job: WorkJob, into final: String) throws {
        for f in job.files {
            var dst = "\(final)/\(f)"
            // An input named like an output (e.g. `metrics.json`) keeps both: the input gets an `input.` prefix.
            if FileOps.lexists(dst) { dst = "\(final)/input.\(f)" }
            if !FileOps.moveNoReplace("\(job.path)/\(f)", dst) {
                throw SpoolError("cannot move \(job.path)/\(f) to \(dst): \(FileOps.errnoText())")
            }
        }
        FileOps.fsyncPath(final)
        removeWorkFolder(job)
    }

    private func removeWorkFolder(_ job: WorkJob) {
        for f in [".final", ".attempts", ".manifest"] { unlink("\(job.path)/\(f)") }
        unlink("\(job.path)/.lock")
        if rmdir(job.path) == 0 { FileOps.fsyncPath(work) }
        close(job.lockFD)
        job.lockFD = -1
    }

    /// Writes `error.json` into a fresh `failed/` output folder and publishes it.
    @discardableResult
    public func fail(_ job: WorkJob, error: JobError) throws -> String {
        let out = try outputFolder(for: job, failed: true)
        var obj: [String: Any] = ["job": job.name, "error": error.code, "message": error.message]
        if let f = error.field { obj["field"] = f }
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
        try FileOps.writeAtomically(data + Data("\n".utf8), to: "\(out)/error.json")
        return try publish(job, output: out, failed: true)
    }

    /// Puts a job back into `incoming/` (graceful stop): data files first, the manifest last, each without
    /// replacing anything; its attempt count goes to `incoming/.NAME.attempts`. Returns false if something
    /// would collide; the job then stays in `work/` (unlocked) and is picked up as an orphan later.
    public func requeue(_ job: WorkJob, attempts: Int) -> Bool {
        if let out = Optional("\(done)/.tmp-\(job.dirName)"), FileOps.lexists(out) { FileOps.removeTree(out) }
        let files = job.files.filter { $0 != job.manifestFile }
        if FileOps.lexists("\(incoming)/\(job.manifestFile)") || files.contains(where: { FileOps.lexists("\(incoming)/\($0)") }) {
            return false
        }
        guard JobName.isValid(job.name),
              (try? FileOps.writeAtomically(Data("\(attempts)\n".utf8), to: "\(incoming)/.\(job.name).attempts")) != nil
        else { return false }
        for f in files where !FileOps.moveNoReplace("\(job.path)/\(f)", "\(incoming)/\(f)") { return false }
        guard FileOps.moveNoReplace("\(job.path)/\(job.manifestFile)", "\(incoming)/\(job.manifestFile)") else { return false }
        FileOps.fsyncPath(incoming)
        removeWorkFolder(job)
        return true
    }

    /// Releases the lock without touching the folder (the job stays in `work/` as an orphan).
    public func release(_ job: WorkJob) {
        if job.lockFD >= 0 { close(job.lockFD); job.lockFD = -1 }
    }
}
