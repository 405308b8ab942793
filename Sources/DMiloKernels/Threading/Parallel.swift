// Work splitting for Swift loops over the persistent pool (WorkerPool.swift), within the calling thread's budget.

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
    public static let minimumWork = 1 << 16

    /// Calls `body(i)` for every i in 0..<n, splitting the range into at most `Threading.count` contiguous chunks
    /// when `work` (elements the whole loop touches) is at least `minimumWork`.
    /// `body` must only write state owned by index i.
    @inlinable
    public static func forEach(_ n: Int, work: Int, _ body: (Int) -> Void) {
        let threads = Swift.min(Threading.count, n)
        if threads <= 1 || work < minimumWork {
            var i = 0
            while i < n { body(i); i &+= 1 }
            return
        }
        chunked(n, chunks: threads, body)
    }

    /// Runs `body` over 0..<n in `chunks` contiguous pieces on the pool (the caller takes part), `chunks − 1`
    /// workers at most. Ignores `minimumWork`: the caller has decided the loop is worth splitting.
    public static func chunked(_ n: Int, chunks: Int, _ body: (Int) -> Void) {
        let chunks = Swift.max(1, Swift.min(chunks, n))
        if chunks == 1 {
            var i = 0
            while i < n { body(i); i &+= 1 }
            return
        }
        if OpProfile.enabled && OpProfile.isOwner {
            profiledRun(n, chunks: chunks, body)
            return
        }
        WorkerPool.shared.run(chunks: chunks, helpers: chunks - 1) { t in
            var i = n * t / chunks
            let hi = n * (t + 1) / chunks
            while i < hi { body(i); i &+= 1 }
        }
    }

    /// `chunked` while profiling: the region's wall time minus the caller's own chunks is threading overhead.
    static func profiledRun(_ n: Int, chunks: Int, _ body: (Int) -> Void) {
        let t0 = OpProfile.nanoseconds()
        var own: UInt64 = 0
        withUnsafeMutablePointer(to: &own) { ownRaw in
            let ownP = SharedPointer(ownRaw)  // written only by the profiling thread
            WorkerPool.shared.run(chunks: chunks, helpers: chunks - 1) { t in
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

    /// Calls `body(t)` for t in 0..<tasks, each on its own thread where the budget allows (independent tasks such
    /// as the images of a batch or the column blocks of one GEMM).
    public static func tasks(_ tasks: Int, _ body: (Int) -> Void) {
        chunked(tasks, chunks: Swift.min(tasks, Threading.count), body)
    }
}
