// Fully connected layer (PyTorch `nn.Linear`: y = x Wᵀ + b, weight [outF, inF]) and its input VJP.

/// Linear-layer kernels on caller-owned row-major buffers (outputs must not overlap inputs).
public enum Linear {
    /// out[n, outF] = x[n, inF] · weightᵀ + bias. Overwrites `out`.
    public static func forward(
        n: Int, inF: Int, outF: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>
    ) {
        var beta: Float = 0
        if let bias {
            for r in 0..<n { (out + r * outF).update(from: bias, count: outF) }
            beta = 1
        }
        BLAS.sgemm(
            transA: false, transB: true, m: n, n: outF, k: inF, alpha: 1, a: x, lda: inF,
            b: weight, ldb: inF, beta: beta, c: out, ldc: outF)
    }

    /// dx[n, inF] = dOut[n, outF] · weight. Overwrites `dx`.
    public static func backwardInput(
        n: Int, inF: Int, outF: Int, dOut: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>
    ) {
        BLAS.sgemm(
            transA: false, transB: false, m: n, n: inF, k: outF, alpha: 1, a: dOut, lda: outF,
            b: weight, ldb: inF, beta: 0, c: dx, ldc: inF)
    }
}
