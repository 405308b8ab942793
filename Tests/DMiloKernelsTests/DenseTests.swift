import COpenBLAS
import XCTest

@testable import DMiloKernels

/// Linear layer, GEMM wrapper, threading helpers.
final class DenseTests: XCTestCase {
    func linearReference(n: Int, inF: Int, outF: Int, x: [Double], w: [Double], b: [Double]?) -> [Double] {
        var out = [Double](repeating: 0, count: n * outF)
        for r in 0..<n {
            for o in 0..<outF {
                var acc = b?[o] ?? 0
                for i in 0..<inF { acc += x[r * inF + i] * w[o * inF + i] }
                out[r * outF + o] = acc
            }
        }
        return out
    }

    func linear(n: Int, inF: Int, outF: Int, x: [Float], w: [Float], b: [Float]?) -> [Float] {
        withPointers([x, w, b ?? [], [Float](repeating: .nan, count: n * outF)]) { p in
            Linear.forward(
                n: n, inF: inF, outF: outF, x: p[0], weight: p[1], bias: b == nil ? nil : UnsafePointer(p[2]),
                out: p[3])
        }[3]
    }

    func testLinearForwardAndVJP() {
        for (n, inF, outF) in [(3, 5, 4), (1, 7, 2), (4, 1, 3)] {
            let x = randn(n * inF, seed: 1), w = randn(outF * inF, seed: 2), b = randn(outF, seed: 3)
            assertClose(
                linear(n: n, inF: inF, outF: outF, x: x, w: w, b: b),
                linearReference(n: n, inF: inF, outF: outF, x: toD(x), w: toD(w), b: toD(b)), "linear + bias")
            assertClose(
                linear(n: n, inF: inF, outF: outF, x: x, w: w, b: nil),
                linearReference(n: n, inF: inF, outF: outF, x: toD(x), w: toD(w), b: nil), "linear")
            let c = randn(n * outF, seed: 4)
            let g = withPointers([c, w, [Float](repeating: .nan, count: n * inF)]) { p in
                Linear.backwardInput(n: n, inF: inF, outF: outF, dOut: p[0], weight: p[1], dx: p[2])
            }[2]
            checkVJP(
                "linear \(n)x\(inF)->\(outF)", x: x, c: c, g: g,
                f: { self.linearReference(n: n, inF: inF, outF: outF, x: $0, w: toD(w), b: toD(b)) },
                kernel: { self.linear(n: n, inF: inF, outF: outF, x: $0, w: w, b: b) })
        }
    }

    /// Every transpose combination with padded leading dimensions, against triple loops.
    func testSgemmAllTransposesAndStrides() {
        let m = 3, n = 4, k = 5, pad = 2
        for ta in [false, true] {
            for tb in [false, true] {
                let lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad
                let a = randn((ta ? k : m) * lda, seed: 5), b = randn((tb ? n : k) * ldb, seed: 6)
                let c0 = randn(m * ldc, seed: 7)
                let c = withPointers([a, b, c0]) { p in
                    BLAS.sgemm(
                        transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: p[0], lda: lda, b: p[1], ldb: ldb,
                        beta: 2, c: p[2], ldc: ldc)
                }[2]
                var expected = toD(c0)
                for i in 0..<m {
                    for j in 0..<n {
                        var acc = 0.0
                        for l in 0..<k {
                            acc += Double(ta ? a[l * lda + i] : a[i * lda + l]) * Double(tb ? b[j * ldb + l] : b[l * ldb + j])
                        }
                        expected[i * ldc + j] = 0.5 * acc + 2 * Double(c0[i * ldc + j])
                    }
                }
                assertClose(c, expected, "sgemm transA=\(ta) transB=\(tb)")
            }
        }
    }

    func testCoreNameAndThreadCount() {
        XCTAssertFalse(BLAS.coreName.isEmpty)
        XCTAssertNotEqual(BLAS.coreName, "unknown")
        let saved = Threading.count
        defer { Threading.count = saved }
        Threading.count = 1
        XCTAssertEqual(Threading.count, 1)
        XCTAssertEqual(Int(openblas_get_num_threads_for_test()), 1)
        Threading.count = 0
        XCTAssertEqual(Threading.count, 1, "count is clamped to at least one thread")
    }

    /// Parallel.forEach visits every index exactly once, on one thread and on several.
    func testParallelForEachCoversEveryIndexOnce() {
        let saved = Threading.count
        defer { Threading.count = saved }
        for threads in [1, 2, 3] {
            Threading.count = threads
            for (n, work) in [(0, 1 << 20), (1, 1 << 20), (7, 1 << 20), (1000, Parallel.minimumWork), (1000, 10)] {
                let hits = Tensor(shape: [max(n, 1)])
                let p = hits.data
                Parallel.forEach(n, work: work) { i in p[i] += 1 }
                XCTAssertEqual(Array(hits.array.prefix(n)), [Float](repeating: 1, count: n), "n=\(n) threads=\(threads)")
            }
        }
    }
}

func openblas_get_num_threads_for_test() -> Int32 { openblas_get_num_threads() }
