import Foundation
import XCTest

@testable import DMiloKernels

/// GroupNorm and SiLU against Float64 references and finite differences.
final class NormActivationTests: XCTestCase {
    /// torch.nn.functional.group_norm in Float64: biased variance, eps inside the square root.
    func groupNormReference(
        batch: Int, channels: Int, spatial: Int, groups: Int, eps: Double, x: [Double],
        gamma: [Double]?, beta: [Double]?
    ) -> (out: [Double], mean: [Double], rstd: [Double]) {
        let cpg = channels / groups, n = cpg * spatial
        var out = x, means = [Double](), rstds = [Double]()
        for bg in 0..<batch * groups {
            let vals = x[(bg * n)..<((bg + 1) * n)]
            let mu = vals.reduce(0, +) / Double(n)
            let v = vals.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(n)
            let r = 1 / (v + eps).squareRoot()
            means.append(mu); rstds.append(r)
            for k in 0..<n {
                let c = (bg % groups) * cpg + k / spatial
                out[bg * n + k] = (x[bg * n + k] - mu) * r * (gamma?[c] ?? 1) + (beta?[c] ?? 0)
            }
        }
        return (out, means, rstds)
    }

    struct GN { let batch, channels, spatial, groups: Int; let affine: Bool }

    func groupNorm(_ s: GN, eps: Float, x: [Float], gamma: [Float], beta: [Float]) -> ([Float], [Float], [Float]) {
        let r = withPointers([
            x, gamma, beta, [Float](repeating: .nan, count: x.count),
            [Float](repeating: .nan, count: s.batch * s.groups),
            [Float](repeating: .nan, count: s.batch * s.groups),
        ]) { p in
            GroupNorm.forward(
                batch: s.batch, channels: s.channels, spatial: s.spatial, groups: s.groups, eps: eps,
                x: p[0], gamma: s.affine ? UnsafePointer(p[1]) : nil,
                beta: s.affine ? UnsafePointer(p[2]) : nil, out: p[3], mean: p[4], rstd: p[5])
        }
        return (r[3], r[4], r[5])
    }

    let cases = [
        GN(batch: 2, channels: 6, spatial: 5, groups: 3, affine: true),
        GN(batch: 1, channels: 4, spatial: 9, groups: 1, affine: true),
        GN(batch: 2, channels: 4, spatial: 3, groups: 4, affine: false),
        GN(batch: 1, channels: 8, spatial: 16, groups: 2, affine: true),
    ]

    func testGroupNormForwardMatchesReference() {
        for (n, s) in cases.enumerated() {
            let count = s.batch * s.channels * s.spatial
            // offset 3 and scale 2 so mean and variance matter
            let x = randn(count, seed: 1).map { 3 + 2 * $0 }
            let gamma = randn(s.channels, seed: 2), beta = randn(s.channels, seed: 3)
            let (out, mean, rstd) = groupNorm(s, eps: 1e-5, x: x, gamma: gamma, beta: beta)
            let ref = groupNormReference(
                batch: s.batch, channels: s.channels, spatial: s.spatial, groups: s.groups,
                eps: 1e-5, x: toD(x), gamma: s.affine ? toD(gamma) : nil,
                beta: s.affine ? toD(beta) : nil)
            assertClose(out, ref.out, "groupnorm #\(n)")
            let inPlace = withPointers([x, gamma, beta, [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]) { p in
                GroupNorm.forward(
                    batch: s.batch, channels: s.channels, spatial: s.spatial, groups: s.groups, eps: 1e-5,
                    x: p[0], gamma: s.affine ? UnsafePointer(p[1]) : nil,
                    beta: s.affine ? UnsafePointer(p[2]) : nil, out: p[0], mean: p[3], rstd: p[4])
            }[0]
            XCTAssertEqual(inPlace, out, "groupnorm in place #\(n)")
            assertClose(mean, ref.mean, "groupnorm mean #\(n)")
            assertClose(rstd, ref.rstd, "groupnorm rstd #\(n)")
        }
    }

    /// Large mean, tiny spread: a one-pass E[x²] − E[x]² in float would cancel catastrophically.
    func testGroupNormStatisticsAreStableForLargeMean() {
        let s = GN(batch: 1, channels: 2, spatial: 64, groups: 1, affine: false)
        let x = randn(128, seed: 4).map { 1000 + 0.01 * $0 }
        let (out, _, rstd) = groupNorm(s, eps: 1e-6, x: x, gamma: [], beta: [])
        let ref = groupNormReference(
            batch: 1, channels: 2, spatial: 64, groups: 1, eps: 1e-6, x: toD(x), gamma: nil,
            beta: nil)
        // float inputs near 1000 carry ~6e-5 absolute error, i.e. ~1 % of the 0.01 spread
        assertClose(out, ref.out, rtol: 2e-2, "groupnorm large mean")
        assertClose(rstd, ref.rstd, rtol: 2e-2, "groupnorm large mean rstd")
    }

    func testGroupNormVJPMatchesFiniteDifferences() {
        for (n, s) in cases.enumerated() {
            let count = s.batch * s.channels * s.spatial
            let x = randn(count, seed: 5).map { 1 + 1.5 * $0 }
            let gamma = randn(s.channels, seed: 6), beta = randn(s.channels, seed: 7), c = randn(count, seed: 8)
            let (_, mean, rstd) = groupNorm(s, eps: 1e-5, x: x, gamma: gamma, beta: beta)
            for alias in [false, true] {
                let g = withPointers([x, gamma, mean, rstd, c, [Float](repeating: .nan, count: count)]) { p in
                    GroupNorm.backwardInput(
                        batch: s.batch, channels: s.channels, spatial: s.spatial, groups: s.groups,
                        x: p[0], gamma: s.affine ? UnsafePointer(p[1]) : nil, mean: p[2], rstd: p[3],
                        dOut: p[4], dx: alias ? p[4] : p[5])
                }[alias ? 4 : 5]
                checkVJP(
                    "groupnorm #\(n) alias=\(alias)", x: x, c: c, g: g,
                    f: {
                        self.groupNormReference(
                            batch: s.batch, channels: s.channels, spatial: s.spatial,
                            groups: s.groups, eps: 1e-5, x: $0,
                            gamma: s.affine ? toD(gamma) : nil,
                            beta: s.affine ? toD(beta) : nil
                        ).out
                    },
                    kernel: { self.groupNorm(s, eps: 1e-5, x: $0, gamma: gamma, beta: beta).0 })
            }
        }
    }

    func siluReference(_ x: [Double]) -> [Double] { x.map { $0 / (1 + Foundation.exp(-$0)) } }

    func testSiLUForwardAndVJP() {
        // include saturated values: σ(±30) must not produce NaN
        let x = randn(300, seed: 9, sigma: 3) + [30, -30, 0, 88, -88]
        let out = withPointers([x, [Float](repeating: .nan, count: x.count)]) { p in
            SiLU.forward(count: x.count, x: p[0], out: p[1])
        }[1]
        assertClose(out, siluReference(toD(x)), "silu")
        let inPlace = withPointers([x]) { p in SiLU.forward(count: x.count, x: p[0], out: p[0]) }[0]
        XCTAssertEqual(inPlace, out, "silu in place")

        let c = randn(x.count, seed: 10)
        for alias in [false, true] {
            let g = withPointers([x, c, [Float](repeating: .nan, count: x.count)]) { p in
                SiLU.backwardInput(count: x.count, x: p[0], dOut: p[1], dx: alias ? p[1] : p[2])
            }[alias ? 1 : 2]
            XCTAssertTrue(g.allSatisfy(\.isFinite))
            checkVJP(
                "silu alias=\(alias)", x: x, c: c, g: g, f: siluReference,
                kernel: { xs in withPointers([xs, xs]) { p in SiLU.forward(count: xs.count, x: p[0], out: p[1]) }[1] },
                maxIndices: 400)
        }
    }

    /// A buffer large enough for the multi-threaded path equals the single-threaded result.
    func testSiLUThreadedMatchesSerial() {
        let x = randn(Parallel.minimumWork + 4097, seed: 11)  // above the threshold, ragged last chunk
        let saved = Threading.count
        defer { Threading.count = saved }
        var results: [[Float]] = []
        for t in [1, 2] {
            Threading.count = t
            results.append(withPointers([x, x]) { p in SiLU.forward(count: x.count, x: p[0], out: p[1]) }[1])
        }
        XCTAssertEqual(results[0], results[1])
    }
}
