import DMiloJobs
import Foundation

#if canImport(Glibc)
import Glibc
#endif

// The spool's two channels around a running job (docs/INTERFACE.md "Cancelling a job", "Progress of a running
// job"): `cancel/NAME` from clients to the daemon, `work/NAME/progress.json` from the job to clients.

extension Spool {
    // MARK: progress.json

    /// The file name of a running job's progress in its `work/` folder.
    public static let progressFileName = "progress.json"

    /// Where the job's progress goes; nil for a job named `progress`, whose manifest has that name already.
    /// (A job's data files never end in `.json`, so no input can be overwritten.)
    public func progressFile(for job: WorkJob) -> String? {
        Self.progressFile(jobDirectory: job.path, manifestFile: job.manifestFile)
    }

    /// The same for a job worker, which knows its job by folder and manifest name.
    static func progressFile(jobDirectory: String, manifestFile: String) -> String? {
        manifestFile == progressFileName ? nil : "\(jobDirectory)/\(progressFileName)"
    }

    /// Removes the progress file before the job's files are published or put back (it is not one of them).
    func discardProgress(_ job: WorkJob) {
        if let p = progressFile(for: job) { unlink(p) }
        unlink("\(job.path)/\(JobControl.progressTempName)")
    }

    /// The job folder in `work/` of the job named `name`, if one is there (`NAME`, or `NAME~k` for a second job of
    /// the same name).
    public func workFolder(ofJob name: String) -> String? {
        for dir in FileOps.list(work) where !dir.hasPrefix(".") && (dir == name || dir.hasPrefix("\(name)~")) {
            if FileOps.readSmall("\(work)/\(dir)/.manifest") == "\(name).json" { return "\(work)/\(dir)" }
        }
        return nil
    }

    // MARK: cancel/

    /// A cancel request: `cancel/NAME` and how long ago it was made.
    public struct CancelRequest: Sendable {
        public var name: String
        public var age: Double
    }

    /// Pending cancel requests (one readdir; dot-files and invalid names are ignored here and removed by
    /// ``removeInvalidCancelFiles()``).
    public func cancelRequests() -> [CancelRequest] {
        let now = Date().timeIntervalSince1970
        return FileOps.list(cancel).filter { JobName.isValid($0) }.map { name in
            var st = stat()
            // mtime: a client may renew a request by touching it.
            let t = lstat("\(cancel)/\(name)", &st) == 0 ? Double(st.st_mtim.tv_sec) : now
            return CancelRequest(name: name, age: now - t)
        }
    }

    public func isCancelRequested(_ name: String) -> Bool {
        JobName.isValid(name) && FileOps.lexists("\(cancel)/\(name)")
    }

    /// Removes `cancel/NAME` (the request has been served, or names no job).
    public func removeCancelRequest(_ name: String) {
        guard JobName.isValid(name) else { return }
        if unlink("\(cancel)/\(name)") == 0 { FileOps.fsyncPath(cancel) }
    }

    /// Removes entries of `cancel/` that can never name a job (not a valid job name); returns them.
    @discardableResult
    public func removeInvalidCancelFiles() -> [String] {
        var removed: [String] = []
        for name in FileOps.list(cancel) where !name.hasPrefix(".") && !JobName.isValid(name) {
            let p = "\(cancel)/\(name)"
            if FileOps.isDirectory(p) { rmdir(p) } else { unlink(p) }
            removed.append(name)
        }
        return removed
    }

    /// The error of a job cancelled by a client.
    public static func cancelledError(_ job: WorkJob, running: Bool) -> JobError {
        JobError(
            code: JobError.jobCancelled,
            message: "\(job.manifestFile): cancelled by a client (cancel/\(job.name)) \(running ? "while running" : "before it started")")
    }

    // MARK: a job folder deleted while the job runs

    /// True when the job's `work/` folder has been deleted (by someone else: the daemon never removes a folder it
    /// holds before publishing).
    public func isVanished(_ job: WorkJob) -> Bool { !FileOps.isDirectory(job.path) }

    /// Publishes `failed/NAME` holding only error.json for a job whose `work/` folder (and so its inputs) was deleted
    /// while it ran, and drops the job's outputs. Without this, publishing would fail on the missing folder and leave
    /// `failed/.tmp-NAME` behind.
    @discardableResult
    public func failVanished(_ job: WorkJob) throws -> String {
        FileOps.removeTree("\(done)/.tmp-\(job.dirName)")
        let out = try outputFolder(for: job, failed: true)
        let obj: [String: Any] = [
            "job": job.displayName ?? job.name, "error": JobError.jobCancelled,
            "message": "\(job.manifestFile): its folder work/\(job.dirName) was deleted while the job ran; the job was "
                + "stopped and its inputs are gone (to cancel a job and keep its inputs, create cancel/\(job.name))",
        ]
        try writeErrorJSON(obj, into: out)
        let base = JobName.isValid(job.name) ? job.name : JobName.sanitized(job.name)
        for i in 0..<10_000 {
            let candidate = "\(failed)/\(i == 0 ? base : "\(base).\(i)")"
            if rename(out, candidate) == 0 {
                FileOps.fsyncPath(failed)
                release(job)
                return candidate
            }
            if errno != ENOTEMPTY && errno != EEXIST && errno != ENOTDIR && errno != EISDIR { break }
        }
        let reason = FileOps.errnoText()
        FileOps.removeTree(out)
        release(job)
        throw SpoolError("cannot publish \(out) to failed/\(base): \(reason)")
    }
}
