// Scaled dot-product self-attention (diffusers `Attention` core after the q/k/v projections) and its input VJP.
// Per batch b and head h, with Q, K, V the [L, d] column blocks of the [B, L, heads·d] inputs:
//   S = scale·Q Kᵀ,  P = softmax_rows(S),  O = P V
// VJP:  dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(dP ∘ P)),  dQ = scale·dS K,  dK = scale·dSᵀ Q

/// Multi-head attention kernels on token-major buffers [B, L, heads·headDim] (outputs must not overlap inputs).
public enum Attention {
    /// out = softmax(scale·Q Kᵀ) V per head; saves the probabilities `probs` [B, heads, L, L]. Overwrites `out`.
    public static func forward(
        batch: Int, length: Int, heads: Int, headDim: Int, scale: Float,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>
    ) {
        let timer = OpProfile.begin(.attention); defer { OpProfile.end(timer) }
        let L = length, D = headDim, HD = heads * headDim
        for b in 0..<batch {
            for h in 0..<heads {
                let off = b * L * HD + h * D
                let p = probs + (b * heads + h) * L * L
                BLAS.sgemm(
                    transA: false, transB: true, m: L, n: L, k: D, alpha: scale, a: q + off, lda: HD,
                    b: k + off, ldb: HD, beta: 0, c: p, ldc: L)
                softmaxRows(rows: L, cols: L, p)
                BLAS.sgemm(
                    transA: false, transB: false, m: L, n: D, k: L, alpha: 1, a: p, lda: L,
                    b: v + off, ldb: HD, beta: 0, c: out + off, ldc: HD)
            }
        }
    }

    /// dq, dk, dv = VJP of `forward` at (q, k, v) with the saved `probs`. Overwrites all three.
    /// `scratch` holds `scratchCount(...)` floats.
    public static func backwardInput(
        batch: Int, length: Int, heads: Int, headDim: Int, scale: Float,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        probs: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let timer = OpProfile.begin(.attention); defer { OpProfile.end(timer) }
        let L = length, D = headDim, HD = heads * headDim
        let dS = scratch
        for b in 0..<batch {
            for h in 0..<heads {
                let off = b * L * HD + h * D
                let p = probs + (b * heads + h) * L * L
                BLAS.sgemm(
                    transA: true, transB: false, m: L, n: D, k: L, alpha: 1, a: p, lda: L,
                    b: dOut + off, ldb: HD, beta: 0, c: dv + off, ldc: HD)
                BLAS.sgemm(
                    transA: false, transB: true, m: L, n: L, k: D, alpha: 1, a: dOut + off, lda: HD,
                    b: v + off, ldb: HD, beta: 0, c: dS, ldc: L)
                // softmax VJP row by row: dS = P ∘ (dP − ⟨dP, P⟩_row)
                for r in 0..<L {
                    let pr = p + r * L, sr = dS + r * L
                    let dot = blockDot(pr, sr, L)
                    var j = 0
                    while j < L { sr[j] = pr[j] * (sr[j] - dot); j &+= 1 }
                }
                BLAS.sgemm(
                    transA: false, transB: false, m: L, n: D, k: L, alpha: scale, a: dS, lda: L,
                    b: k + off, ldb: HD, beta: 0, c: dq + off, ldc: HD)
                BLAS.sgemm(
                    transA: true, transB: false, m: L, n: D, k: L, alpha: scale, a: dS, lda: L,
                    b: q + off, ldb: HD, beta: 0, c: dk + off, ldc: HD)
            }
        }
    }

    /// Floats of scratch `backwardInput` needs (one L×L matrix).
    public static func scratchCount(batch: Int, length: Int, heads: Int, headDim: Int) -> Int { length * length }

    /// Floats of `probs` that `forward` writes: B·heads·L·L.
    public static func probsCount(batch: Int, length: Int, heads: Int) -> Int { batch * heads * length * length }

    /// Numerically stable in-place softmax of each row (max subtracted before exp). Separate max / exp / sum /
    /// scale passes so each loop vectorises (a running `s += e` inside the exp loop would serialise it).
    static func softmaxRows(rows: Int, cols: Int, _ x: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = x + r * cols
            let m = blockMax(row, cols)
            var j = 0
            while j < cols { row[j] = fastExp(row[j] - m); j &+= 1 }
            let inv = Float(1 / blockSum(row, cols))
            j = 0
            while j < cols { row[j] *= inv; j &+= 1 }
        }
    }
}
