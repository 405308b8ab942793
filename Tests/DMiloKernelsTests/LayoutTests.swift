import XCTest

@testable import DMiloKernels

/// Upsample, average pooling, channel concat and token transposes: linear maps, so each VJP is checked by finite
/// differences of the Float64 reference (which is exact up to rounding) and by adjointness.
final class LayoutTests: XCTestCase {
    func upsampleReference(b: Int, c: Int, h: Int, w: Int, _ x: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: b * c * 4 * h * w)
        for p in 0..<(b * c) {
            for y in 0..<(2 * h) {
                for xx in 0..<(2 * w) {
                    let src: Int = (p * h + y / 2) * w + xx / 2
                    out[(p * 2 * h + y) * 2 * w + xx] = x[src]
                }
            }
        }
        return out
    }

    func poolReference(b: Int, c: Int, h: Int, w: Int, _ x: [Double]) -> [Double] {
        let ho = h / 2, wo = w / 2
        var out = [Double](repeating: 0, count: b * c * ho * wo)
        for p in 0..<(b * c) {
            for y in 0..<ho {
                for xx in 0..<wo {
                    var s = 0.0
                    for dy in 0..<2 {
                        let row: Int = (p * h + 2 * y + dy) * w + 2 * xx
                        s += x[row] + x[row + 1]
                    }
                    out[(p * ho + y) * wo + xx] = s / 4
                }
            }
        }
        return out
    }

    func testUpsample2xForwardAndVJP() {
        for (b, c, h, w) in [(2, 3, 4, 5), (1, 1, 1, 1), (1, 2, 3, 7)] {
            let x = randn(b * c * h * w, seed: 1), n = 4 * x.count
            let fwd = { (xs: [Float]) in
                withPointers([xs, [Float](repeating: .nan, count: n)]) { p in
                    Upsample2x.forward(batch: b, channels: c, h: h, w: w, x: p[0], out: p[1])
                }[1]
            }
            assertClose(fwd(x), upsampleReference(b: b, c: c, h: h, w: w, toD(x)), "upsample")
            let dOut = randn(n, seed: 2)
            let g = withPointers([dOut, [Float](repeating: .nan, count: x.count)]) { p in
                Upsample2x.backwardInput(batch: b, channels: c, h: h, w: w, dOut: p[0], dx: p[1])
            }[1]
            checkVJP(
                "upsample \(h)x\(w)", x: x, c: dOut, g: g,
                f: { self.upsampleReference(b: b, c: c, h: h, w: w, $0) }, kernel: fwd)
        }
    }

    func testAvgPool2xForwardAndVJPIncludingOddSizes() {
        for (b, c, h, w) in [(2, 3, 4, 6), (1, 2, 5, 7), (1, 1, 2, 2)] {
            let x = randn(b * c * h * w, seed: 3), n = b * c * (h / 2) * (w / 2)
            let fwd = { (xs: [Float]) in
                withPointers([xs, [Float](repeating: .nan, count: n)]) { p in
                    AvgPool2x.forward(batch: b, channels: c, h: h, w: w, x: p[0], out: p[1])
                }[1]
            }
            assertClose(fwd(x), poolReference(b: b, c: c, h: h, w: w, toD(x)), "avgpool")
            let dOut = randn(n, seed: 4)
            let g = withPointers([dOut, [Float](repeating: .nan, count: x.count)]) { p in
                AvgPool2x.backwardInput(batch: b, channels: c, h: h, w: w, dOut: p[0], dx: p[1])
            }[1]
            checkVJP(
                "avgpool \(h)x\(w)", x: x, c: dOut, g: g,
                f: { self.poolReference(b: b, c: c, h: h, w: w, $0) }, kernel: fwd)
        }
    }

    /// Per batch item: the na values of `x` then the nb values of `y`.
    func interleave(_ x: [Float], _ y: [Float], b: Int, na: Int, nb: Int) -> [Float] {
        var out: [Float] = []
        for i in 0..<b {
            out.append(contentsOf: x[(i * na)..<((i + 1) * na)])
            out.append(contentsOf: y[(i * nb)..<((i + 1) * nb)])
        }
        return out
    }

    func testChannelConcatForwardAndVJP() {
        let b = 2, c1 = 3, c2 = 2, s = 5
        let a = randn(b * c1 * s, seed: 5), bb = randn(b * c2 * s, seed: 6)
        let out = withPointers([a, bb, [Float](repeating: .nan, count: b * (c1 + c2) * s)]) { p in
            ChannelConcat.forward(batch: b, c1: c1, c2: c2, spatial: s, a: p[0], b: p[1], out: p[2])
        }[2]
        let ref = interleave(a, bb, b: b, na: c1 * s, nb: c2 * s)
        XCTAssertEqual(out, ref)
        let dOut = randn(out.count, seed: 7)
        let r = withPointers([dOut, [Float](repeating: .nan, count: a.count), [Float](repeating: .nan, count: bb.count)]) { p in
            ChannelConcat.backwardInput(batch: b, c1: c1, c2: c2, spatial: s, dOut: p[0], da: p[1], db: p[2])
        }
        // adjointness: ⟨dOut, cat(a, b)⟩ = ⟨da, a⟩ + ⟨db, b⟩, and the split is exact
        XCTAssertEqual(dot(toD(dOut), toD(out)), dot(toD(r[1]), toD(a)) + dot(toD(r[2]), toD(bb)), accuracy: 1e-9)
        XCTAssertEqual(interleave(r[1], r[2], b: b, na: c1 * s, nb: c2 * s), dOut)
    }

    func testTransposesAreInverseAndAdjoint() {
        for (b, c, l) in [(2, 3, 5), (1, 40, 70), (1, 1, 1)] {
            let x = randn(b * c * l, seed: 8)
            let t = withPointers([x, [Float](repeating: .nan, count: x.count)]) { p in
                Transpose.channelsToTokens(batch: b, channels: c, length: l, x: p[0], out: p[1])
            }[1]
            for bi in 0..<b {
                for ci in 0..<c {
                    for li in 0..<l {
                        XCTAssertEqual(t[(bi * l + li) * c + ci], x[(bi * c + ci) * l + li])
                    }
                }
            }
            let back = withPointers([t, [Float](repeating: .nan, count: x.count)]) { p in
                Transpose.tokensToChannels(batch: b, channels: c, length: l, x: p[0], out: p[1])
            }[1]
            XCTAssertEqual(back, x, "tokensToChannels inverts channelsToTokens")
            let y = randn(x.count, seed: 9)
            let ty = withPointers([y, [Float](repeating: .nan, count: y.count)]) { p in
                Transpose.tokensToChannels(batch: b, channels: c, length: l, x: p[0], out: p[1])
            }[1]
            XCTAssertEqual(dot(toD(y), toD(t)), dot(toD(ty), toD(x)), accuracy: 1e-9, "adjoint")
        }
    }
}
