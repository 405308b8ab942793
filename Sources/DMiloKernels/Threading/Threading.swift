// Thread budgets. A budget is the number of cores one job's kernels may use (the calling thread plus
// `budget − 1` pool workers). It is per thread, not per process: the daemon runs `jobs` jobs on their own threads at
// once, each with its own budget (`Threading.withBudget`), and one job's setting must not change another's.
// OpenBLAS's thread count is process-wide, so OpenBLAS runs single-threaded and `ParallelGEMM.sgemm` splits GEMMs
// over the same pool instead (see ParallelGEMM.swift).

import COpenBLAS

#if canImport(Glibc)
import Glibc
#endif

/// The thread budget of the calling thread.
public enum Threading {
    /// Process default for threads that set no budget of their own (CLI `--threads`). Read on every parallel loop
    /// by threads without a budget; written by the CLI before any kernel runs (and by tests), hence unsafe.
    nonisolated(unsafe) private static var processDefault: Int = onlineCores()

    /// Threads the calling thread's kernels use (>= 1): its own budget (`withBudget`), else the process default.
    /// Setting it sets the process default, which threads with their own budget ignore.
    public static var count: Int {
        get { ThreadBudget.current ?? processDefault }
        set {
            processDefault = Swift.max(1, newValue)
            ParallelGEMM.singleThreadedOpenBLAS()
        }
    }

    /// Runs `body` with `threads` as the calling thread's budget (restored afterwards, also on throw). Other
    /// threads, including other jobs running at the same time, are unaffected.
    public static func withBudget<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
        let saved = ThreadBudget.current
        ThreadBudget.current = Swift.max(1, threads)
        defer { ThreadBudget.current = saved }
        return try body()
    }

    /// Per-job threads for `jobs` concurrent jobs when the configuration says 0 ("what is fastest here"): the
    /// online cores shared evenly, at least 1. Measured on 2 cores (README "Threads and jobs"): jobs side by side
    /// scale better than threads inside one job, and more threads than cores only wait on each other.
    public static func automaticThreads(jobs: Int) -> Int {
        Swift.max(1, onlineCores() / Swift.max(1, jobs))
    }

    /// Cores the OS reports online.
    public static func onlineCores() -> Int {
        #if canImport(Glibc)
        return Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }
}

/// The per-thread budget slot (a pthread key: no allocation, a few ns per read).
enum ThreadBudget {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        // Not inside precondition(): release builds of this module use -Ounchecked, which drops the condition, call
        // included (the key would stay 0, another library's slot).
        let rc = pthread_key_create(&k, nil)
        if rc != 0 { fatalError("pthread_key_create failed (\(rc))") }
        return k
    }()

    /// The calling thread's own budget, nil when it has none.
    static var current: Int? {
        get {
            let bits = Int(bitPattern: pthread_getspecific(key))
            return bits > 0 ? bits : nil
        }
        set { pthread_setspecific(key, UnsafeRawPointer(bitPattern: newValue ?? 0)) }
    }
}
