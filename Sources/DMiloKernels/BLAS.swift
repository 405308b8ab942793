// The one GEMM entry point. Everything dense (convolutions via im2col, linear layers, attention) funnels through
// OpenBLAS's sgemm, which reaches 80-93 % of this CPU's fp32 peak (docs/platform.md §3).

import COpenBLAS

/// Thin row-major wrapper over `cblas_sgemm`.
public enum BLAS {
    /// C = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is m×k, op(B) is k×n, C is m×n.
    /// `lda`/`ldb`/`ldc` are the row strides of the matrices as stored (before the transpose).
    @inlinable
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {  // OpenBLAS would still scale C; do it ourselves to avoid touching A/B.
            for i in 0..<m {
                let row = c + i * ldc
                for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
            }
            return
        }
        ParallelGEMM.sgemm(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
            ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// The kernel family OpenBLAS picked at load time (e.g. "Cooperlake", "Haswell"; see OPENBLAS_CORETYPE).
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }
}
