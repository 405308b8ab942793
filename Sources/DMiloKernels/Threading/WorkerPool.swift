// A persistent pool of worker threads shared by every job in the process. `DispatchQueue.concurrentPerform` woke
// workers through libdispatch for every loop and waited for its slowest one; here the caller posts a region, starts
// on its chunks at once, and idle workers join it as they arrive (a worker that arrives after the last chunk is taken
// just leaves). The caller never waits for a worker to start, only for chunks a worker has already claimed, so a
// busy or descheduled worker costs at most one chunk, and nested or concurrent use cannot deadlock.
// Workers spin briefly after each region before sleeping: a UNet pass posts regions back to back (every ~10-100 µs),
// and a futex wake-up costs as much as a small region.

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One parallel loop in flight: chunks 0..<chunks, claimed by the caller and up to `slots` workers.
final class ParallelRegion: @unchecked Sendable {
    let chunks: Int
    /// Next unclaimed chunk.
    let next = Atomic<Int>(0)
    /// Chunks finished.
    let done = Atomic<Int>(0)
    /// Workers currently inside the region (they may still touch `body`).
    let attached = Atomic<Int>(0)
    /// Workers that may still join (guarded by the pool lock).
    var slots: Int
    /// The loop body; cleared by the caller once no worker can reach it.
    var body: ((Int) -> Void)?

    init(chunks: Int, slots: Int, body: @escaping (Int) -> Void) {
        self.chunks = chunks
        self.slots = slots
        self.body = body
    }

    /// Claims and runs chunks until none is left.
    @inline(never)
    func work() {
        guard let body else { return }
        while true {
            let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= chunks { return }
            body(i)
            done.add(1, ordering: .releasing)
        }
    }
}

/// The process-wide pool. Grows to the largest number of helpers requested at once (capped), never shrinks.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Upper bound on pool threads (a misconfigured `threads: 1000` must not spawn 1000 threads).
    static let maxThreads = 256
    /// Spin iterations a worker polls for new work before sleeping (~20-50 µs).
    /// `DMILO_POOL_SPIN` overrides it (0: sleep at once; a tuning knob for `dmilo bench`, read once).
    static let spinIterations = Tuning.integer("DMILO_POOL_SPIN", default: 20_000)

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    /// Regions that still accept workers (guarded by `mutex`).
    private var queue: [ParallelRegion] = []
    /// Mirror of `queue.count` for the spinning workers' lock-free check.
    private let queued = Atomic<Int>(0)
    private var threads = 0, sleeping = 0, free = 0

    private init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    /// Runs `body(i)` for i in 0..<chunks on the calling thread and at most `helpers` workers; returns when every
    /// chunk has finished and no worker can still call `body`.
    func run(chunks: Int, helpers: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            let region = ParallelRegion(chunks: chunks, slots: helpers, body: body)
            post(region, helpers: helpers)
            // The caller's own chunks run with budget 1 like the workers', so a nested loop stays on its thread.
            let saved = ThreadBudget.current
            ThreadBudget.current = 1
            region.work()
            ThreadBudget.current = saved
            retire(region)
            while region.done.load(ordering: .acquiring) < chunks { sched_yield() }
            while region.attached.load(ordering: .acquiring) > 0 { sched_yield() }
            region.body = nil  // the escape check of withoutActuallyEscaping needs every copy gone
        }
    }

    private func post(_ region: ParallelRegion, helpers: Int) {
        pthread_mutex_lock(mutex)
        queue.append(region)
        queued.store(queue.count, ordering: .releasing)
        // Start threads until enough are free for this region (other jobs' regions may hold the rest).
        while free < helpers && threads < Self.maxThreads {
            threads += 1
            free += 1
            spawnWorker()
        }
        let wake = Swift.min(helpers, sleeping)
        pthread_mutex_unlock(mutex)
        if wake >= sleeping && wake > 0 {
            pthread_cond_broadcast(cond)
        } else {
            for _ in 0..<wake { pthread_cond_signal(cond) }
        }
    }

    /// Removes the region from the queue (no worker can join after this).
    private func retire(_ region: ParallelRegion) {
        pthread_mutex_lock(mutex)
        if let i = queue.firstIndex(where: { $0 === region }) {
            queue.remove(at: i)
            queued.store(queue.count, ordering: .releasing)
        }
        pthread_mutex_unlock(mutex)
    }

    private func spawnWorker() {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setstacksize(&attr, 8 << 20)
        var tid = pthread_t()
        let me = Unmanaged.passUnretained(self).toOpaque()
        let rc = pthread_create(
            &tid, &attr,
            { arg in
                let pool = Unmanaged<WorkerPool>.fromOpaque(arg!).takeUnretainedValue()
                ThreadBudget.current = 1  // kernels called from a chunk run serially
                pool.workerLoop()
                return nil
            }, me)
        pthread_attr_destroy(&attr)
        precondition(rc == 0, "pthread_create failed (\(rc))")
        pthread_detach(tid)
    }

    private func workerLoop() {
        while true {
            var spins = 0
            while queued.load(ordering: .acquiring) == 0 && spins < Self.spinIterations { spins += 1 }
            pthread_mutex_lock(mutex)
            while queue.isEmpty {
                sleeping += 1
                pthread_cond_wait(cond, mutex)
                sleeping -= 1
            }
            let region = queue[0]
            region.slots -= 1
            if region.slots <= 0 {
                queue.removeFirst()
                queued.store(queue.count, ordering: .releasing)
            }
            region.attached.add(1, ordering: .relaxed)
            free -= 1
            pthread_mutex_unlock(mutex)
            region.work()
            pthread_mutex_lock(mutex)
            free += 1
            pthread_mutex_unlock(mutex)
            region.attached.subtract(1, ordering: .releasing)
        }
    }
}
