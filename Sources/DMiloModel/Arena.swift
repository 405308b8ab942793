// Bump allocator for activations and scratch. A forward/VJP pass asks for buffers in the same order every call,
// so after the first call at a given batch size the arena holds one slab of exactly the peak size and steady-state
// calls allocate nothing. Pointers stay valid until `reset()`; `release(to:)` only rewinds the bump offset
// (stack discipline for temporaries).

/// A growable float arena with stack-like mark/release.
final class Arena {
    private var slab: UnsafeMutablePointer<Float>?
    private var capacity = 0
    /// Blocks handed out beyond the slab, with the logical offset each was allocated at.
    private var overflow: [(offset: Int, pointer: UnsafeMutablePointer<Float>)] = []
    /// Floats handed out (logical offset).
    private(set) var used = 0
    /// Largest `used` since the slab was last sized.
    private(set) var peak = 0

    /// Frees everything, then (if the last pass overflowed) re-sizes the slab to the observed peak.
    func reset() {
        for b in overflow { UnsafeMutableRawPointer(b.pointer).deallocate() }
        if !overflow.isEmpty || peak > capacity {
            slab.map { UnsafeMutableRawPointer($0).deallocate() }
            capacity = peak
            slab = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: max(capacity, 1))
        }
        overflow.removeAll(keepingCapacity: true)
        used = 0
    }

    /// `count` floats, 64-byte aligned, uninitialised.
    func alloc(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = (count + 15) & ~15
        defer { used += n; peak = max(peak, used) }
        if let slab, used + n <= capacity { return slab + used }
        // Slow path (first pass at a new size): a separate block, folded into the slab at the next reset.
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 16) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(n, 16))
        overflow.append((used, p))
        return p
    }

    /// Current bump offset, for `release(to:)`.
    var mark: Int { used }
    /// Rewinds to `mark` (buffers handed out since then may be reused by later allocations). Overflow blocks
    /// handed out since then are freed at once, so a first pass at a new size peaks near the true peak, not at the
    /// sum of all its temporaries.
    func release(to mark: Int) {
        used = mark
        while let last = overflow.last, last.offset >= mark {
            UnsafeMutableRawPointer(last.pointer).deallocate()
            overflow.removeLast()
        }
    }

    /// Bytes currently reserved (slab + overflow blocks).
    var reservedBytes: Int { 4 * capacity }

    deinit {
        for b in overflow { UnsafeMutableRawPointer(b.pointer).deallocate() }
        slab.map { UnsafeMutableRawPointer($0).deallocate() }
    }
}
