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
        return WorkJob(dirName: dirName, path: dir, name: c.name, manifestFile: c.manifestFile, lockFD: fd)
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

    /// Publishes a job: marks `.final` (publication started), moves the job's files into `output` beside
    /// the results, fsyncs, renames `output` to `done/NAME` (or `failed/NAME`; `NAME.1`, `NAME.2`, … when taken)
    /// and removes the `work/` folder. The published folder always holds the manifest, so it is never empty and
    /// rename(2) can never replace another job's folder. Safe to call again after a crash at any point.
    @discardableResult
    public func publish(_ job: WorkJob, failed isFailure: Bool) throws -> String {
        let parentName = isFailure ? "failed" : "done"
        let parent = isFailure ? failed : done
        let output = "\(parent)/.tmp-\(job.dirName)"
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
            try FileOps.writeAtomically(Data("\(parentName)/\((final as NSString).lastPathComponent)".utf8),
                                        to: "\(job.path)/.published")
        }
        // No output folder left: the rename already happened (before a crash); `.published` says where.
        let final = FileOps.readSmall("\(job.path)/.published").map { root.appendingPathComponent($0).path } ?? parent
        removeWorkFolder(job)
        return final
    }

    private func removeWorkFolder(_ job: WorkJob) {
        for f in [".final", ".published", ".attempts", ".manifest"] { unlink("\(job.path)/\(f)") }
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
        return try publish(job, failed: true)
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
