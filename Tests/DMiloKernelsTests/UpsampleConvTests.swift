import XCTest

@testable import DMiloKernels

/// The fused low-resolution upsample+conv against the two-step reference (nearest 2× upsample, then 3×3 conv).
final class UpsampleConvTests: XCTestCase {
    struct Dims { let batch, cin, h, w, cout: Int }
    let dims = [
        Dims(batch: 2, cin: 3, h: 4, w: 5, cout: 2), Dims(batch: 1, cin: 1, h: 1, w: 1, cout: 3),
        Dims(batch: 1, cin: 9, h: 3, w: 2, cout: 1),
    ]  // cin > 4·cout: inner conv takes its transposed route

    func reference(_ d: Dims, x: [Double], w: [Double], bias: [Double]?) -> [Double] {
        var up = [Double](repeating: 0, count: d.batch * d.cin * 4 * d.h * d.w)
        for p in 0..<(d.batch * d.cin) {
            for y in 0..<(2 * d.h) {
                for xx in 0..<(2 * d.w) {
                    let src: Int = (p * d.h + y / 2) * d.w + xx / 2
                    up[(p * 2 * d.h + y) * 2 * d.w + xx] = x[src]
                }
            }
        }
        let s = Conv2DShape(
            batch: d.batch, cin: d.cin, h: 2 * d.h, w: 2 * d.w, cout: d.cout, kernel: 3, stride: 1,
            padding: 1)
        return convReference(s, x: up, w: w, bias: bias)
    }

    func forward(_ d: Dims, x: [Float], w: [Float], bias: [Float]?) -> [Float] {
        let scratch = Tensor(shape: [
            Upsample2xConv3x3.scratchCount(
                batch: d.batch, cin: d.cin, h: d.h, w: d.w,
                cout: d.cout)
        ])
        return withPointers([x, w, bias ?? [], [Float](repeating: .nan, count: d.batch * d.cout * 4 * d.h * d.w)]) { p in
            Upsample2xConv3x3.forward(
                batch: d.batch, cin: d.cin, h: d.h, w: d.w, cout: d.cout, x: p[0], weight: p[1],
                bias: bias == nil ? nil : UnsafePointer(p[2]), out: p[3], scratch: scratch.data)
        }[3]
    }

    func testForwardMatchesUpsampleThenConv() {
        for (n, d) in dims.enumerated() {
            let x = randn(d.batch * d.cin * d.h * d.w, seed: 1), w = randn(d.cout * d.cin * 9, seed: 2)
            let b = randn(d.cout, seed: 3)
            assertClose(
                forward(d, x: x, w: w, bias: b), reference(d, x: toD(x), w: toD(w), bias: toD(b)),
                "upsample-conv #\(n)")
            assertClose(
                forward(d, x: x, w: w, bias: nil), reference(d, x: toD(x), w: toD(w), bias: nil),
                "upsample-conv no bias #\(n)")
        }
    }

    func testBackwardInputMatchesFiniteDifferences() {
        for (n, d) in dims.enumerated() {
            let x = randn(d.batch * d.cin * d.h * d.w, seed: 4), w = randn(d.cout * d.cin * 9, seed: 5)
            let b = randn(d.cout, seed: 6), c = randn(d.batch * d.cout * 4 * d.h * d.w, seed: 7)
            let scratch = Tensor(shape: [
                Upsample2xConv3x3.scratchCount(
                    batch: d.batch, cin: d.cin, h: d.h, w: d.w,
                    cout: d.cout)
            ])
            let g = withPointers([c, w, [Float](repeating: .nan, count: x.count)]) { p in
                Upsample2xConv3x3.backwardInput(
                    batch: d.batch, cin: d.cin, h: d.h, w: d.w, cout: d.cout, dOut: p[0],
                    weight: p[1], dx: p[2], scratch: scratch.data)
            }[2]
            checkVJP(
                "upsample-conv #\(n)", x: x, c: c, g: g,
                f: { self.reference(d, x: $0, w: toD(w), bias: toD(b)) },
                kernel: { self.forward(d, x: $0, w: w, bias: b) })
        }
    }
}
