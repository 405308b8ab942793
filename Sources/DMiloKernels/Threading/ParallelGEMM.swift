// GEMMs split over the job's thread budget. OpenBLAS's own threading is process-wide (`openblas_set_num_threads`),
// so two jobs with different budgets cannot both be right, and its threads busy-wait after every call, which on a
// 2-core box steals the core from the other job. OpenBLAS therefore runs single-threaded and a GEMM large enough
// to share is cut into column (or row) blocks, a few per thread of the calling job's budget, on the worker pool.

import COpenBLAS

public enum ParallelGEMM {
    /// Multiply-adds below which a GEMM stays on one thread (a block of at least ~64 K multiply-adds per thread
    /// keeps the split cost, ~1-5 µs, under 10 %).
    /// `DMILO_GEMM_MIN_WORK` overrides it (a tuning knob for `dmilo bench`, read once).
    public static let minimumMultiplyAdds = Tuning.integer("DMILO_GEMM_MIN_WORK", default: 1 << 17)

    /// Fewest columns (rows) per block: each block re-packs the other operand (OpenBLAS packs A per call), so
    /// narrow blocks cost more in packing than they gain in balance. 512 (one block per thread for a 32×32 map)
    /// beat 64 in all four same-run comparisons (batch 1 and 4, twice each: −1 to −7 % fwd+VJP time on 2 threads).
    /// `DMILO_GEMM_BLOCK` overrides it.
    public static let minimumBlock = Swift.max(16, Tuning.integer("DMILO_GEMM_BLOCK", default: 512))

    private static let openBLASOnce: Void = { openblas_set_num_threads(1) }()

    /// Makes OpenBLAS single-threaded (once per process; every GEMM entry point calls it).
    @inline(__always)
    public static func singleThreadedOpenBLAS() { _ = openBLASOnce }

    /// Row-major C = alpha·op(A)·op(B) + beta·C (as `cblas_sgemm`), split over `Threading.count` threads.
    /// Requires m, n, k > 0.
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        singleThreadedOpenBLAS()
        OpProfile.measure(.convGEMM) {
            let threads = Swift.min(Threading.count, Swift.max(1, m * n * k / minimumMultiplyAdds))
            let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
            if threads <= 1 {
                cblas_sgemm(
                    CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
                return
            }
            let aP = SharedPointer(a), bP = SharedPointer(b), cP = SharedPointer(c)
            // Split the larger of m and n into up to `Parallel.chunksPerThread` blocks per thread of at least
            // `minimumBlock` columns (rows), edges on multiples of 16 floats (one cache line: aligned OpenBLAS paths).
            let perThread = Parallel.chunksPerThread
            if n >= m {
                let blocks = Swift.max(threads, Swift.min(threads * perThread, n / minimumBlock))
                Parallel.chunked(blocks, chunks: blocks, threads: threads) { t in
                    let j0 = Self.edge(t, of: blocks, n), j1 = Self.edge(t + 1, of: blocks, n)
                    if j1 <= j0 { return }
                    let bj = transB ? bP.p + j0 * ldb : bP.p + j0
                    cblas_sgemm(
                        CblasRowMajor, ta, tb, Int32(m), Int32(j1 - j0), Int32(k), alpha, aP.p, Int32(lda),
                        bj, Int32(ldb), beta, cP.p + j0, Int32(ldc))
                }
            } else {
                let blocks = Swift.max(threads, Swift.min(threads * perThread, m / minimumBlock))
                Parallel.chunked(blocks, chunks: blocks, threads: threads) { t in
                    let i0 = Self.edge(t, of: blocks, m), i1 = Self.edge(t + 1, of: blocks, m)
                    if i1 <= i0 { return }
                    let ai = transA ? aP.p + i0 : aP.p + i0 * lda
                    cblas_sgemm(
                        CblasRowMajor, ta, tb, Int32(i1 - i0), Int32(n), Int32(k), alpha, ai, Int32(lda),
                        bP.p, Int32(ldb), beta, cP.p + i0 * ldc, Int32(ldc))
                }
            }
        }
    }

    /// Start of block t of `blocks` over 0..<extent, rounded to a multiple of 16 (the last block takes the rest).
    @inline(__always)
    static func edge(_ t: Int, of blocks: Int, _ extent: Int) -> Int {
        if t >= blocks { return extent }
        return Swift.min(extent, (extent * t / blocks) & ~15)
    }
}
