// SiLU / swish: y = x·σ(x). VJP: dy/dx = σ(x)·(1 + x·(1 − σ(x))).

/// Elementwise SiLU kernels.
public enum SiLU {
    /// out = x·σ(x); `out` may alias `x`.
    public static func forward(count: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let outP = SharedPointer(out)
        forChunks(count) { lo, hi in
            var i = lo
            while i < hi { let v = x[i]; outP.p[i] = v / (1 + fastExp(-v)); i &+= 1 }
        }
    }

    /// dx = dOut·σ(x)·(1 + x·(1 − σ(x))); `dx` may alias `dOut`.
    public static func backwardInput(count: Int, x: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                                     dx: UnsafeMutablePointer<Float>) {
        let dxP = SharedPointer(dx)
        forChunks(count) { lo, hi in
            var i = lo
            while i < hi {
                let v = x[i], s = 1 / (1 + fastExp(-v))
                dxP.p[i] = dOut[i] * s * (1 + v * (1 - s))
                i &+= 1
            }
        }
    }

    /// Splits [0, count) into 4096-element chunks handed to `Parallel.forEach`.
    @inline(__always)
    static func forChunks(_ count: Int, _ body: (Int, Int) -> Void) {
        let chunk = 4096, chunks = (count + chunk - 1) / chunk
        Parallel.forEach(chunks, work: count) { c in body(c * chunk, Swift.min(count, (c + 1) * chunk)) }
    }
}
