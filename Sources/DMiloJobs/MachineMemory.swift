import Foundation

/// The memory this process may use, for the daemon's default per-job budget (`memory_budget_mb: 0`): the cgroup v2
/// limit (`memory.max` of our own cgroup, which systemd's `MemoryMax=` sets) when there is one, else the machine's
/// RAM. Without a budget a single manifest (`dmplug` with 300 steps) could plan gigabytes and be OOM-killed.
public enum MachineMemory {
    /// Share of the limit handed out to jobs; the rest is the daemon, the page cache and the kernel.
    public static let jobShare = 0.75

    /// Bytes available to this process: min(cgroup memory.max, MemTotal). nil when neither can be read.
    public static func limitBytes(procRoot: String = "/proc", cgroupRoot: String = "/sys/fs/cgroup") -> Int? {
        let ram = memTotal(procRoot: procRoot)
        let cg = cgroupMax(procRoot: procRoot, cgroupRoot: cgroupRoot)
        switch (ram, cg) {
        case let (r?, c?): return min(r, c)
        case let (r?, nil): return r
        case let (nil, c?): return c
        default: return nil
        }
    }

    /// Default per-job budget in MiB for `jobs` concurrent jobs (at least 256 MiB; 2048 when nothing is readable).
    public static func defaultJobBudgetMB(jobs: Int, limitBytes: Int? = MachineMemory.limitBytes()) -> Int {
        guard let limit = limitBytes, limit > 0 else { return 2048 }
        let share = Double(limit) * jobShare / Double(max(1, jobs)) / 1_048_576
        return max(256, Int(min(share, Double(Int.max >> 21))))
    }

    static func memTotal(procRoot: String) -> Int? {
        guard let s = try? String(contentsOfFile: "\(procRoot)/meminfo", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            if let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) {
                let (b, o) = kb.multipliedReportingOverflow(by: 1024)
                return o ? Int.max : b
            }
        }
        return nil
    }

    /// `memory.max` of this process's cgroup v2 (`0::/PATH` in /proc/self/cgroup); nil for "max" or no cgroup v2.
    static func cgroupMax(procRoot: String, cgroupRoot: String) -> Int? {
        guard let s = try? String(contentsOfFile: "\(procRoot)/self/cgroup", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix("0::") {
            var path = String(line.dropFirst(3))
            // Walk up: a limit set on a parent slice applies too; the smallest one binds.
            var best: Int?
            while true {
                let file = "\(cgroupRoot)\(path == "/" ? "" : path)/memory.max"
                if let v = try? String(contentsOfFile: file, encoding: .utf8),
                    let n = Int(v.trimmingCharacters(in: .whitespacesAndNewlines))
                {
                    best = min(best ?? n, n)
                }
                if path == "/" || path.isEmpty { break }
                path = (path as NSString).deletingLastPathComponent
            }
            return best
        }
        return nil
    }
}
