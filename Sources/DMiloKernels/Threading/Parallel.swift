// Work splitting for Swift loops over the persistent pool (WorkerPool.swift), within the calling thread's budget.

#if canImport(Glibc)
import Glibc
#endif

/// A pointer that may cross into pool workers. Safe because every worker writes a disjoint range.
@usableFromInline
struct SharedPointer<T>: @unchecked Sendable {
    @usableFromInline let p: UnsafeMutablePointer<T>
    @usableFromInline init(_ p: UnsafeMutablePointer<T>) { self.p = p }
    @usableFromInline init(_ p: UnsafePointer<T>) { self.p = UnsafeMutablePointer(mutating: p) }
}

/// Work splitting for Swift loops.
public enum Parallel {
    /// Below this many elements a loop runs on the calling thread. Posting a region to a spinning worker costs
    /// about a microsecond and a sleeping one 5-20 µs (milliseconds when the other core is busy), while these loops
    /// stream 1-4 elements per ns: 64 Ki elements (one 64-channel 32×32 feature map) is the smallest loop where a
    /// second thread pays on an idle box.
    /// `DMILO_PARALLEL_MIN_WORK` overrides it (a tuning knob for `dmilo bench`, read once).
    public static let minimumWork = Tuning.integer("DMILO_PARALLEL_MIN_WORK", default: 1 << 16)

    /// Chunks per thread of a split loop. More chunks than threads let whoever is running take the rest when a
    /// worker is late or descheduled (a shared box): the caller then waits for at most one chunk, not a thread's
    /// whole share. One chunk costs an atomic increment.
    public static let chunksPerThread = 4

    /// Calls `body(i)` for every i in 0..<n on at most `Threading.count` threads (in contiguous chunks claimed as
    /// threads become free) when `work` (elements the whole loop touches) is at least `minimumWork`.
    /// `body` must only write state owned by index i.
    @inlinable
    public static func forEach(_ n: Int, work: Int, _ body: (Int) -> Void) {
        let threads = Swift.min(Threading.count, n)
        if threads <= 1 || work < minimumWork {
            var i = 0
            while i < n { body(i); i &+= 1 }
            return
        }
        chunked(n, chunks: threads * chunksPerThread, threads: threads, body)
    }

    /// Runs `body` over 0..<n in `chunks` contiguous pieces on the pool: the caller and at most `threads − 1`
    /// workers (default: the budget) claim pieces until none is left. Ignores `minimumWork`: the caller has decided
    /// the loop is worth splitting.
    public static func chunked(_ n: Int, chunks: Int, threads: Int? = nil, _ body: (Int) -> Void) {
        let chunks = Swift.max(1, Swift.min(chunks, n))
        let helpers = Swift.min(chunks, threads ?? Threading.count) - 1
        if chunks == 1 || helpers < 1 {
            var i = 0
            while i < n { body(i); i &+= 1 }
            return
        }
        if OpProfile.enabled && OpProfile.isOwner {
            profiledRun(n, chunks: chunks, helpers: helpers, body)
            return
        }
        WorkerPool.shared.run(chunks: chunks, helpers: helpers) { t in
            var i = n * t / chunks
            let hi = n * (t + 1) / chunks
            while i < hi { body(i); i &+= 1 }
        }
    }

    /// `chunked` while profiling: the region's wall time minus the caller's own chunks is threading overhead.
    static func profiledRun(_ n: Int, chunks: Int, helpers: Int, _ body: (Int) -> Void) {
        let t0 = OpProfile.nanoseconds()
        var own: UInt64 = 0
        withUnsafeMutablePointer(to: &own) { ownRaw in
            let ownP = SharedPointer(ownRaw)  // written only by the profiling thread
            WorkerPool.shared.run(chunks: chunks, helpers: helpers) { t in
                let mine = OpProfile.isOwner, s = mine ? OpProfile.nanoseconds() : 0
                var i = n * t / chunks
                let hi = n * (t + 1) / chunks
                while i < hi { body(i); i &+= 1 }
                if mine { ownP.p.pointee &+= OpProfile.nanoseconds() &- s }
            }
        }
        let wall = OpProfile.nanoseconds() &- t0
        OpProfile.addOverhead(wall > own ? wall &- own : 0)
    }
}

/// Environment overrides of the splitting thresholds, so one build can compare settings in the same run.
enum Tuning {
    static func integer(_ name: String, default value: Int) -> Int {
        guard let p = getenv(name), let v = Int(String(cString: p)), v >= 0 else { return value }
        return v
    }
}
