// Micro-benchmarks that `dmilo bench` calls to report kernel speed on the box it runs on. Not used by tests:
// speed targets live in the CLI, never in timed unit tests.

import DMiloKernels
import Dispatch

/// Wall time and arithmetic rate of one kernel call (best of the timed iterations).
public struct KernelTiming: Sendable, CustomStringConvertible {
    /// Best wall time in milliseconds.
    public var milliseconds: Double
    /// Useful floating-point operations per second, in 10⁹ (2 per multiply-add).
    public var gflops: Double
    public var description: String {
        "\(Double(Int(milliseconds * 1000)) / 1000) ms, \(Double(Int(gflops * 10)) / 10) GFLOPS"
    }
}

/// Kernel timings on random data.
public enum KernelBench {
    /// Times `Conv2D.forward`, `Conv2D.backwardInput` and, for comparison, bare sgemms with the forward's
    /// M = cout, K = cin·kh·kw over all N = hOut·wOut columns (per batch item), in the same column tiles the
    /// convolution uses (so memory stays at `scratchCount`) — the rate the convolution could at best reach.
    public static func conv(_ s: Conv2DShape, iterations: Int = 10)
        -> (forward: KernelTiming, backwardInput: KernelTiming, gemm: KernelTiming) {
        let x = filled(s.inputCount, seed: 1), w = filled(s.weightCount, seed: 2), b = filled(s.cout, seed: 3)
        let y = filled(s.outputCount, seed: 4), scratch = Tensor(shape: [Swift.max(s.scratchCount, 1)])
        let dx = Tensor(shape: [s.inputCount]), col = Tensor(shape: [s.patchSize * s.tileRows * s.wOut])
        let flops = Double(s.flops)
        let fwd = time(iterations, flops) {
            Conv2D.forward(s, x: x.data, weight: w.data, bias: b.data, out: y.data, scratch: scratch.data)
        }
        let bwd = time(iterations, flops) {
            Conv2D.backwardInput(s, dOut: y.data, weight: w.data, dx: dx.data, scratch: scratch.data)
        }
        let k = s.patchSize, hw = s.hOut * s.wOut
        let gemm = time(iterations, flops) {
            for _ in 0..<s.batch {
                var y0 = 0
                while y0 < s.hOut {
                    let n = Swift.min(s.tileRows, s.hOut - y0) * s.wOut
                    BLAS.sgemm(transA: false, transB: false, m: s.cout, n: n, k: k, alpha: 1, a: w.data, lda: k,
                               b: col.data, ldb: n, beta: 0, c: y.data + y0 * s.wOut, ldc: hw)
                    y0 += s.tileRows
                }
            }
        }
        return (fwd, bwd, gemm)
    }

    /// Times one row-major sgemm C[m, n] = A[m, k]·B[k, n].
    public static func sgemm(m: Int, n: Int, k: Int, iterations: Int = 10) -> KernelTiming {
        let a = filled(m * k, seed: 5), b = filled(k * n, seed: 6), c = Tensor(shape: [m * n])
        return time(iterations, Double(2 * m * n * k)) {
            BLAS.sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a.data, lda: k, b: b.data, ldb: n,
                       beta: 0, c: c.data, ldc: n)
        }
    }

    /// Best-of-`iterations` timing of `body` after one warm-up call.
    public static func time(_ iterations: Int, _ flops: Double, _ body: () -> Void) -> KernelTiming {
        body()
        var best = UInt64.max
        for _ in 0..<Swift.max(1, iterations) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            best = Swift.min(best, DispatchTime.now().uptimeNanoseconds - t0)
        }
        let seconds = Double(best) * 1e-9
        return KernelTiming(milliseconds: seconds * 1e3, gflops: flops / seconds * 1e-9)
    }

    static func filled(_ n: Int, seed: UInt64) -> Tensor {
        var r = SeededRandom(seed: seed, stream: "bench")
        let t = Tensor(shape: [Swift.max(n, 1)])
        r.fillGaussian(t.data, count: n, sigma: 0.1)
        return t
    }
}
