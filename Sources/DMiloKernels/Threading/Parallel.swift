// Thread budget for the whole engine. One knob (`--threads`) governs both OpenBLAS's pthread pool and the Swift loops
// that split work with `DispatchQueue.concurrentPerform`, so a daemon sharing an edge box can be held to N cores.

import COpenBLAS
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// The engine-wide thread count. Setting it also calls `openblas_set_num_threads`.
public enum Threading {
    // Written once at start-up (CLI flag) before any kernel runs; reads race-free in practice, hence unsafe.
    nonisolated(unsafe) private static var stored: Int = onlineCores()

    /// Threads used by OpenBLAS GEMMs and by parallel Swift loops (>= 1). Defaults to the online core count.
    public static var count: Int {
        get { stored }
        set {
            stored = Swift.max(1, newValue)
            openblas_set_num_threads(Int32(stored))
        }
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

/// A pointer that may cross into `concurrentPerform` workers. Safe because every worker writes a disjoint range.
@usableFromInline
struct SharedPointer<T>: @unchecked Sendable {
    @usableFromInline let p: UnsafeMutablePointer<T>
    @usableFromInline init(_ p: UnsafeMutablePointer<T>) { self.p = p }
    @usableFromInline init(_ p: UnsafePointer<T>) { self.p = UnsafeMutablePointer(mutating: p) }
}

/// Work splitting for Swift loops.
public enum Parallel {
    /// Below this many elements a loop runs on the calling thread. Waking a worker costs 5-20 µs on an idle box and
    /// milliseconds when the other core is busy (concurrentPerform waits for its slowest worker), while these loops
    /// stream 1-4 elements per ns: splitting pays only for buffers of ~1 M elements (256×256 feature maps), never
    /// for the 32×32 UNet's, whose second core is already used by OpenBLAS inside every GEMM.
    public static let minimumWork = 1 << 20

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
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendableBox(body)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let lo = n * t / threads, hi = n * (t + 1) / threads
                var i = lo
                while i < hi { box.value(i); i &+= 1 }
            }
        }
    }
}

/// Carries a non-Sendable closure into `concurrentPerform`; `Parallel.forEach` documents the disjoint-write contract.
@usableFromInline
struct UnsafeSendableBox<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(_ value: T) { self.value = value }
}
