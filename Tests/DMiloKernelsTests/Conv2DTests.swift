import XCTest

@testable import DMiloKernels

/// Direct 7-loop cross-correlation in Float64 (PyTorch conv2d definition, zero padding).
func convReference(_ s: Conv2DShape, x: [Double], w: [Double], bias: [Double]?) -> [Double] {
    let ho = s.hOut, wo = s.wOut
    var out = [Double](repeating: 0, count: s.outputCount)
    for b in 0..<s.batch {
        for o in 0..<s.cout {
            for oy in 0..<ho {
                for ox in 0..<wo {
                    var acc = bias?[o] ?? 0
                    for c in 0..<s.cin {
                        for i in 0..<s.kh {
                            for j in 0..<s.kw {
                                let iy = oy * s.stride - s.padH + i, ix = ox * s.stride - s.padW + j
                                guard iy >= 0, iy < s.h, ix >= 0, ix < s.w else { continue }
                                acc += w[((o * s.cin + c) * s.kh + i) * s.kw + j] * x[((b * s.cin + c) * s.h + iy) * s.w + ix]
                            }
                        }
                    }
                    out[((b * s.cout + o) * ho + oy) * wo + ox] = acc
                }
            }
        }
    }
    return out
}

func convForward(_ s: Conv2DShape, x: [Float], w: [Float], bias: [Float]?) -> [Float] {
    let scratch = Tensor(shape: [max(s.scratchCount, 1)])
    let r = withPointers([x, w, bias ?? [], [Float](repeating: .nan, count: s.outputCount)]) { p in
        Conv2D.forward(
            s, x: p[0], weight: p[1], bias: bias == nil ? nil : UnsafePointer(p[2]), out: p[3],
            scratch: scratch.data)
    }
    return r[3]
}

func convBackward(_ s: Conv2DShape, dOut: [Float], w: [Float]) -> [Float] {
    let scratch = Tensor(shape: [max(s.scratchCount, 1)])
    let r = withPointers([dOut, w, [Float](repeating: .nan, count: s.inputCount)]) { p in
        Conv2D.backwardInput(s, dOut: p[0], weight: p[1], dx: p[2], scratch: scratch.data)
    }
    return r[2]
}

final class Conv2DTests: XCTestCase {
    /// Shapes covering the UNet's convolutions and the corner cases of im2col's bounds arithmetic.
    let shapes: [Conv2DShape] = [
        Conv2DShape(batch: 2, cin: 3, h: 6, w: 5, cout: 4, kernel: 3, stride: 1, padding: 1),  // 3×3 same
        Conv2DShape(batch: 1, cin: 2, h: 7, w: 9, cout: 3, kernel: 3, stride: 2, padding: 1),  // downsample conv
        Conv2DShape(batch: 2, cin: 5, h: 4, w: 3, cout: 2, kernel: 1),  // pointwise (no im2col)
        Conv2DShape(batch: 1, cin: 2, h: 5, w: 6, cout: 3, kernel: 1, stride: 2, padding: 0),  // strided 1×1
        Conv2DShape(batch: 1, cin: 2, h: 8, w: 6, cout: 2, kernel: 5, stride: 1, padding: 2),  // 5×5
        Conv2DShape(batch: 1, cin: 3, h: 7, w: 7, cout: 2, kernel: 3, stride: 3, padding: 0),  // no padding, stride 3
        Conv2DShape(batch: 1, cin: 2, h: 5, w: 7, cout: 2, kh: 1, kw: 3, stride: 1, padH: 0, padW: 2),  // rectangular
        Conv2DShape(batch: 1, cin: 1, h: 3, w: 4, cout: 2, kernel: 3, stride: 2, padding: 2),  // padding > kernel/2
        Conv2DShape(batch: 2, cin: 2, h: 6, w: 5, cout: 2, kh: 3, kw: 3, stride: 1, padH: 0, padW: 1),  // same width only
        Conv2DShape(batch: 1, cin: 2, h: 4, w: 6, cout: 3, kh: 1, kw: 3, stride: 1, padH: 1, padW: 1),  // taller output
        Conv2DShape(batch: 1, cin: 1, h: 1, w: 1, cout: 2, kernel: 3, stride: 1, padding: 1),  // 1×1 image
        // cin > cout, stride 1: backward runs as a convolution with the flipped kernel
        Conv2DShape(batch: 2, cin: 5, h: 6, w: 7, cout: 2, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 1, cin: 4, h: 5, w: 4, cout: 3, kh: 3, kw: 1, stride: 1, padH: 0, padW: 0),  // "valid"
        Conv2DShape(batch: 1, cin: 3, h: 7, w: 6, cout: 1, kernel: 5, stride: 1, padding: 1),  // shrinking output
        Conv2DShape(batch: 1, cin: 3, h: 4, w: 5, cout: 2, kh: 2, kw: 3, stride: 1, padH: 1, padW: 2),  // even kh
    ]

    func testForwardMatchesDirectLoops() {
        for (n, s) in shapes.enumerated() {
            XCTAssertTrue(s.isValid)
            let x = randn(s.inputCount, seed: 1), w = randn(s.weightCount, seed: 2), b = randn(s.cout, seed: 3)
            assertClose(
                convForward(s, x: x, w: w, bias: b), convReference(s, x: toD(x), w: toD(w), bias: toD(b)),
                "conv forward with bias #\(n)")
            assertClose(
                convForward(s, x: x, w: w, bias: nil), convReference(s, x: toD(x), w: toD(w), bias: nil),
                "conv forward without bias #\(n)")
        }
    }

    func testOutputSizeMatchesPyTorchFormula() {
        let s = Conv2DShape(batch: 1, cin: 1, h: 7, w: 8, cout: 1, kernel: 3, stride: 2, padding: 1)
        XCTAssertEqual(s.hOut, 4)  // floor((7 + 2 - 3) / 2) + 1
        XCTAssertEqual(s.wOut, 4)  // floor((8 + 2 - 3) / 2) + 1
        XCTAssertEqual(Conv2DShape(batch: 1, cin: 1, h: 5, w: 5, cout: 1, kernel: 1).scratchCount, 0)
    }

    func testBackwardInputMatchesFiniteDifferences() {
        checkBackward()
    }

    /// The same checks with a 64-float column budget: every layer runs as many one-row tiles.
    func testForwardAndBackwardWithTinyTiles() {
        let saved = Conv2DShape.tileBudget
        defer { Conv2DShape.tileBudget = saved }
        Conv2DShape.tileBudget = 64
        XCTAssertLessThan(shapes[0].tileRows, shapes[0].hOut)
        testForwardMatchesDirectLoops()
        checkBackward()
    }

    func checkBackward() {
        for (n, s) in shapes.enumerated() {
            let x = randn(s.inputCount, seed: 4), w = randn(s.weightCount, seed: 5), b = randn(s.cout, seed: 6)
            let c = randn(s.outputCount, seed: 7)
            let g = convBackward(s, dOut: c, w: w)
            checkVJP(
                "conv #\(n)", x: x, c: c, g: g, f: { convReference(s, x: $0, w: toD(w), bias: toD(b)) },
                kernel: { convForward(s, x: $0, w: w, bias: b) })
        }
    }

    /// A layer large enough to need several im2col tiles, single- and multi-threaded, against the direct loops
    /// (forward) and by adjointness ⟨c, conv(x)⟩ = ⟨convᵀ(c), x⟩ (backward).
    func testTiledLayerMatchesReferenceAndIsAdjoint() {
        let s = Conv2DShape(batch: 1, cin: 64, h: 64, w: 64, cout: 2, kernel: 3, stride: 1, padding: 1)
        XCTAssertGreaterThan(s.hOut, s.tileRows, "shape must exercise tiling")
        let x = randn(s.inputCount, seed: 8), w = randn(s.weightCount, seed: 9), c = randn(s.outputCount, seed: 10)
        let ref = convReference(s, x: toD(x), w: toD(w), bias: nil)
        let saved = Threading.count
        defer { Threading.count = saved }
        var grads: [[Float]] = []
        for threads in [1, 2] {
            Threading.count = threads
            assertClose(convForward(s, x: x, w: w, bias: nil), ref, "tiled conv forward, \(threads) threads")
            grads.append(convBackward(s, dOut: c, w: w))
        }
        // Equal to float rounding, not bit for bit: with 2 threads ParallelGEMM hands each thread a narrower block,
        // and OpenBLAS's Haswell kernels (AVX2 CPUs) sum a block's edge in another order than the full width does.
        assertClose(grads[1], toD(grads[0]), rtol: 1e-5, "backward with 2 threads against 1 thread")
        let lhs = dot(toD(c), ref), rhs = dot(toD(grads[0]), toD(x))
        XCTAssertEqual(lhs, rhs, accuracy: 1e-5 * abs(lhs) + 1e-3)
    }

    func testAdjointnessStride2() {
        let s = Conv2DShape(batch: 3, cin: 4, h: 10, w: 12, cout: 5, kernel: 3, stride: 2, padding: 1)
        let x = randn(s.inputCount, seed: 11), w = randn(s.weightCount, seed: 12), c = randn(s.outputCount, seed: 13)
        let lhs = dot(toD(c), toD(convForward(s, x: x, w: w, bias: nil)))
        let rhs = dot(toD(convBackward(s, dOut: c, w: w)), toD(x))
        XCTAssertEqual(lhs, rhs, accuracy: 1e-5 * max(abs(lhs), 1))
    }
}
