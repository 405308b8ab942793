import Foundation
import XCTest

@testable import DMiloKernels

/// Scaled dot-product attention against a Float64 reference; VJP with respect to q, k and v by finite differences.
final class AttentionTests: XCTestCase {
    struct Dims { let batch, length, heads, headDim: Int; var n: Int { batch * length * heads * headDim } }

    /// softmax(scale·Q Kᵀ) V per (batch, head) on [B, L, heads·d] inputs, in Float64.
    func reference(_ d: Dims, scale: Double, q: [Double], k: [Double], v: [Double]) -> [Double] {
        let L = d.length, D = d.headDim, HD = d.heads * D
        var out = [Double](repeating: 0, count: d.n)
        for b in 0..<d.batch {
            for h in 0..<d.heads {
                for i in 0..<L {
                    var s = [Double](repeating: 0, count: L)
                    for j in 0..<L {
                        var acc = 0.0
                        for e in 0..<D { acc += q[(b * L + i) * HD + h * D + e] * k[(b * L + j) * HD + h * D + e] }
                        s[j] = scale * acc
                    }
                    let m = s.max()!
                    let ex = s.map { Foundation.exp($0 - m) }
                    let z = ex.reduce(0, +)
                    for e in 0..<D {
                        var acc = 0.0
                        for j in 0..<L { acc += ex[j] / z * v[(b * L + j) * HD + h * D + e] }
                        out[(b * L + i) * HD + h * D + e] = acc
                    }
                }
            }
        }
        return out
    }

    func forward(_ d: Dims, scale: Float, q: [Float], k: [Float], v: [Float]) -> (out: [Float], probs: [Float]) {
        let np = Attention.probsCount(batch: d.batch, length: d.length, heads: d.heads)
        let r = withPointers([q, k, v, [Float](repeating: .nan, count: d.n), [Float](repeating: .nan, count: np)]) { p in
            Attention.forward(
                batch: d.batch, length: d.length, heads: d.heads, headDim: d.headDim, scale: scale,
                q: p[0], k: p[1], v: p[2], out: p[3], probs: p[4])
        }
        return (r[3], r[4])
    }

    let dims = [
        Dims(batch: 2, length: 5, heads: 2, headDim: 3), Dims(batch: 1, length: 7, heads: 1, headDim: 4),
        Dims(batch: 1, length: 1, heads: 3, headDim: 2), Dims(batch: 1, length: 19, heads: 2, headDim: 3),
    ]

    func testForwardMatchesReferenceAndProbsAreStochastic() {
        for (n, d) in dims.enumerated() {
            let scale = 1 / Float(d.headDim).squareRoot()
            let q = randn(d.n, seed: 1, sigma: 2), k = randn(d.n, seed: 2, sigma: 2), v = randn(d.n, seed: 3)
            let (out, probs) = forward(d, scale: scale, q: q, k: k, v: v)
            assertClose(out, reference(d, scale: Double(scale), q: toD(q), k: toD(k), v: toD(v)), "attention #\(n)")
            for row in 0..<(probs.count / d.length) {
                let s = probs[(row * d.length)..<((row + 1) * d.length)].reduce(0, +)
                XCTAssertEqual(s, 1, accuracy: 1e-5, "probability row \(row) sums to 1")
            }
        }
    }

    /// Large logits (|s| ~ 1e3) must not overflow exp.
    func testForwardIsStableForLargeLogits() {
        let d = Dims(batch: 1, length: 4, heads: 1, headDim: 2)
        let q = randn(d.n, seed: 4, sigma: 40), k = randn(d.n, seed: 5, sigma: 40), v = randn(d.n, seed: 6)
        let (out, _) = forward(d, scale: 1, q: q, k: k, v: v)
        XCTAssertTrue(out.allSatisfy(\.isFinite))
        assertClose(out, reference(d, scale: 1, q: toD(q), k: toD(k), v: toD(v)), rtol: 1e-4, "attention large logits")
    }

    func testVJPMatchesFiniteDifferencesForQKV() {
        for (n, d) in dims.enumerated() {
            let scale = 1 / Float(d.headDim).squareRoot()
            let q = randn(d.n, seed: 7), k = randn(d.n, seed: 8), v = randn(d.n, seed: 9), c = randn(d.n, seed: 10)
            let (_, probs) = forward(d, scale: scale, q: q, k: k, v: v)
            let scratch = Tensor(shape: [
                Attention.scratchCount(
                    batch: d.batch, length: d.length, heads: d.heads,
                    headDim: d.headDim)
            ])
            let nan = [Float](repeating: .nan, count: d.n)
            let r = withPointers([q, k, v, probs, c, nan, nan, nan]) { p in
                Attention.backwardInput(
                    batch: d.batch, length: d.length, heads: d.heads, headDim: d.headDim,
                    scale: scale, q: p[0], k: p[1], v: p[2], probs: p[3], dOut: p[4],
                    dq: p[5], dk: p[6], dv: p[7], scratch: scratch.data)
            }
            let sd = Double(scale)
            checkVJP(
                "attention dq #\(n)", x: q, c: c, g: r[5],
                f: { self.reference(d, scale: sd, q: $0, k: toD(k), v: toD(v)) },
                kernel: { self.forward(d, scale: scale, q: $0, k: k, v: v).out })
            checkVJP(
                "attention dk #\(n)", x: k, c: c, g: r[6],
                f: { self.reference(d, scale: sd, q: toD(q), k: $0, v: toD(v)) },
                kernel: { self.forward(d, scale: scale, q: q, k: $0, v: v).out })
            checkVJP(
                "attention dv #\(n)", x: v, c: c, g: r[7],
                f: { self.reference(d, scale: sd, q: toD(q), k: toD(k), v: $0) },
                kernel: { self.forward(d, scale: scale, q: q, k: k, v: $0).out })
        }
    }
}
