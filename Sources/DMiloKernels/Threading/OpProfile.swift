// Time per op kind for `dmilo bench unet --profile`. Kernels wrap their entry points in `OpProfile.measure`; when
// profiling is off that is one load and a branch. Only the thread that started the profile records (workers and other
// jobs never touch the totals), and the outermost measured op owns the time (an attention layer's GEMMs count as
// attention). Time spent posting parallel regions and waiting for workers is taken out of the op that ran the
// region and reported as `threading`; whatever no kind claims is elementwise work (SiLU, adds, copies, resampling).

#if canImport(Glibc)
import Glibc
#endif

/// The op kinds the profile separates (elementwise = the rest of the pass).
public enum OpKind: Int, CaseIterable, Sendable {
    case convGEMM, im2col, norm, attention, threading

    public var label: String {
        switch self {
        case .convGEMM: return "GEMM (conv, linear)"
        case .im2col: return "im2col / col2im"
        case .norm: return "GroupNorm"
        case .attention: return "attention"
        case .threading: return "threading overhead"
        }
    }
}

public enum OpProfile {
    /// True while a profile is being recorded (by `start()` until `stop()`).
    nonisolated(unsafe) public private(set) static var enabled = false
    nonisolated(unsafe) private static var owner = pthread_t()
    nonisolated(unsafe) private static var totals = [UInt64](repeating: 0, count: OpKind.allCases.count)
    nonisolated(unsafe) private static var depth = 0
    nonisolated(unsafe) private static var overhead: UInt64 = 0

    /// Starts recording on the calling thread (totals reset).
    public static func start() {
        owner = pthread_self()
        totals = [UInt64](repeating: 0, count: OpKind.allCases.count)
        depth = 0
        overhead = 0
        enabled = true
    }

    /// Stops recording; seconds per kind since `start()`.
    public static func stop() -> [OpKind: Double] {
        enabled = false
        totals[OpKind.threading.rawValue] = overhead
        return Dictionary(uniqueKeysWithValues: OpKind.allCases.map { ($0, Double(totals[$0.rawValue]) * 1e-9) })
    }

    /// Runs `body`, charging its time to `kind` when profiling.
    @inlinable
    public static func measure<R>(_ kind: OpKind, _ body: () throws -> R) rethrows -> R {
        let timer = begin(kind)
        defer { end(timer) }
        return try body()
    }

    /// Starts timing `kind` (one line at a kernel's entry: `let timer = OpProfile.begin(.norm); defer { OpProfile.end(timer) }`).
    @inlinable
    public static func begin(_ kind: OpKind) -> OpTimer { enabled ? beginSlow(kind) : OpTimer(kind: -1, start: 0, overhead: 0) }

    @inlinable
    public static func end(_ timer: OpTimer) { if timer.kind >= 0 { endSlow(timer) } }

    @usableFromInline
    static func beginSlow(_ kind: OpKind) -> OpTimer {
        guard isOwner, depth == 0 else { return OpTimer(kind: -1, start: 0, overhead: 0) }
        depth = 1
        return OpTimer(kind: kind.rawValue, start: nanoseconds(), overhead: overhead)
    }

    @usableFromInline
    static func endSlow(_ t: OpTimer) {
        depth = 0
        let elapsed = nanoseconds() &- t.start, o = overhead &- t.overhead
        totals[t.kind] &+= elapsed > o ? elapsed &- o : 0
    }

    static var isOwner: Bool { pthread_equal(pthread_self(), owner) != 0 }

    /// Adds time the profiling thread spent in a parallel region besides its own chunks.
    static func addOverhead(_ ns: UInt64) { overhead &+= ns }

    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// A running `OpProfile` timer (kind −1: not recording).
public struct OpTimer: Sendable {
    @usableFromInline let kind: Int
    @usableFromInline let start: UInt64
    @usableFromInline let overhead: UInt64
    @usableFromInline init(kind: Int, start: UInt64, overhead: UInt64) {
        self.kind = kind
        self.start = start
        self.overhead = overhead
    }
}
