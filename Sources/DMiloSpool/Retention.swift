import DMiloJobs
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Config `retention`: how many result folders `done/` and `failed/` keep, and for how long. A nil limit keeps
/// everything (the default, as before the key existed).
public struct RetentionPolicy: Sendable, Equatable {
    public var doneMaxAgeDays: Int?
    public var doneMaxJobs: Int?
    public var failedMaxAgeDays: Int?
    public var failedMaxJobs: Int?

    public init(
        doneMaxAgeDays: Int? = nil, doneMaxJobs: Int? = nil, failedMaxAgeDays: Int? = nil,
        failedMaxJobs: Int? = nil
    ) {
        self.doneMaxAgeDays = doneMaxAgeDays
        self.doneMaxJobs = doneMaxJobs
        self.failedMaxAgeDays = failedMaxAgeDays
        self.failedMaxJobs = failedMaxJobs
    }

    public static let keys: Set<String> = ["done_max_age_days", "done_max_jobs", "failed_max_age_days", "failed_max_jobs"]

    public var isEmpty: Bool { self == RetentionPolicy() }
    public var hasAgeLimit: Bool { doneMaxAgeDays != nil || failedMaxAgeDays != nil }

    /// Strict: unknown keys, and values that are not integers >= 1, are errors naming `retention.KEY`.
    static func parse(_ v: JSONValue, file: String) throws -> RetentionPolicy {
        guard let o = v.objectValue else { throw SpoolError("config \(file): `retention` must be an object") }
        for k in o.keys.sorted() where !keys.contains(k) {
            let allowed = keys.sorted().joined(separator: ", ")
            throw SpoolError("config \(file): unknown key `retention.\(k)` (allowed: \(allowed))")
        }
        func limit(_ k: String) throws -> Int? {
            guard let x = o[k] else { return nil }
            // 0 would delete a result as soon as it is published, before any client could read it.
            guard let i = x.intValue, i >= 1 else {
                throw SpoolError("config \(file): `retention.\(k)` must be an integer >= 1 (got \(x))")
            }
            return i
        }
        return RetentionPolicy(
            doneMaxAgeDays: try limit("done_max_age_days"),
            doneMaxJobs: try limit("done_max_jobs"),
            failedMaxAgeDays: try limit("failed_max_age_days"),
            failedMaxJobs: try limit("failed_max_jobs"))
    }
}

/// Deletes the oldest published result folders beyond a ``RetentionPolicy``.
///
/// Only published folders are candidates: a result is written under `.tmp-NAME` and renamed into place (``Spool``),
/// so names starting with `.` (being written) are never touched. Entries that are not real directories (a symlink a
/// client planted) are left alone, and a folder is removed through directory descriptors with `O_NOFOLLOW`
/// (``FileOps/removeTreeNoFollow(parent:name:)``), so a symlink inside a result is unlinked, never followed.
/// Age is the folder's mtime: the moment the job's files were moved in, i.e. its publication.
public enum Retention {
    public struct Deletion: Sendable, Equatable {
        /// `done` or `failed`.
        public var folder: String
        public var name: String
        /// `age` or `count`.
        public var reason: String
    }

    /// Applies `policy` to `done/` and `failed/`; `ages: false` checks the count limits only (after a job, when the
    /// age limits were checked recently). Returns what was deleted.
    public static func sweep(
        _ spool: Spool, policy: RetentionPolicy, now: Double = Date().timeIntervalSince1970,
        ages: Bool = true
    ) -> [Deletion] {
        var out: [Deletion] = []
        let limits: [(String, String, Int?, Int?)] = [
            ("done", spool.done, ages ? policy.doneMaxAgeDays : nil, policy.doneMaxJobs),
            ("failed", spool.failed, ages ? policy.failedMaxAgeDays : nil, policy.failedMaxJobs),
        ]
        for (label, dir, maxAge, maxJobs) in limits where maxAge != nil || maxJobs != nil {
            // Oldest first; the name breaks ties so the order is stable.
            var results = FileOps.list(dir).filter { !$0.hasPrefix(".") }.compactMap { name -> (String, Double)? in
                let p = "\(dir)/\(name)"
                guard FileOps.isDirectory(p), let t = FileOps.mtime(p) else { return nil }
                return (name, t)
            }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }
            var doomed: [(String, String)] = []
            if let days = maxAge {
                let cutoff = now - Double(days) * 86_400
                while let first = results.first, first.1 < cutoff {
                    doomed.append((first.0, "age"))
                    results.removeFirst()
                }
            }
            if let n = maxJobs, results.count > n {
                doomed += results.prefix(results.count - n).map { ($0.0, "count") }
            }
            for (name, reason) in doomed where FileOps.removeTreeNoFollow(parent: dir, name: name) {
                out.append(Deletion(folder: label, name: name, reason: reason))
            }
            if !doomed.isEmpty { FileOps.fsyncPath(dir) }
        }
        return out
    }
}
