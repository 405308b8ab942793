// Convolutions (plain, strided, pointwise, fused upsample) with packed int8 / bf16 weights against the f32 kernels.
// Expected relative error for Gaussian data: int8 rounds each element by ≤ half a step of max|row|/127 ≈ 3.5σ/127,
// i.e. ≈ 0.8 % r.m.s. per operand and ≈ 1.1 % per product sum; bf16 (8 significant bits) rounds by ≤ 2⁻⁸, ≈ 0.23 %
// r.m.s. per operand, ≈ 0.33 % per product sum. The limits are about 2× those estimates.

import XCTest

@testable import DMiloKernels

final class Conv2DLowPrecisionTests: XCTestCase {
    let limits: [ComputePrecision: Double] = [.int8: 0.025, .bf16: 0.007]
    let shapes = [
        Conv2DShape(batch: 2, cin: 5, h: 9, w: 7, cout: 6, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 1, cin: 16, h: 10, w: 10, cout: 8, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 1, cin: 12, h: 6, w: 6, cout: 20, kernel: 1, stride: 1, padding: 0),
        Conv2DShape(batch: 1, cin: 40, h: 8, w: 8, cout: 3, kernel: 3, stride: 1, padding: 1),
    ]

    func relErr(_ a: Tensor, _ b: Tensor) -> Double {
        var n = 0.0, d = 0.0
        for i in 0..<b.count { let e = Double(a[i] - b[i]); n += e * e; d += Double(b[i]) * Double(b[i]) }
        return (n / d).squareRoot()
    }

    func gaussian(_ n: Int, _ seed: UInt64) -> Tensor {
        var r = SeededRandom(seed: seed)
        return r.gaussianTensor(shape: [n])
    }

    func testConvolutionForwardAndVJP() {
        for (si, s) in shapes.enumerated() {
            let x = gaussian(s.inputCount, UInt64(si)), w = gaussian(s.weightCount, 50 + UInt64(si))
            let bias = gaussian(s.cout, 90), g = gaussian(s.outputCount, 70 + UInt64(si))
            let y0 = Tensor(shape: [s.outputCount]), dx0 = Tensor(shape: [s.inputCount])
            let scratch0 = Tensor(shape: [max(1, s.scratchCount)])
            Conv2D.forward(s, x: x.data, weight: w.data, bias: bias.data, out: y0.data, scratch: scratch0.data)
            Conv2D.backwardInput(s, dOut: g.data, weight: w.data, dx: dx0.data, scratch: scratch0.data)
            for p in [ComputePrecision.int8, .bf16] {
                let packed = PackedConvWeights(p, cout: s.cout, patch: s.patchSize, weight: w.data)
                let y = Tensor(shape: [s.outputCount]), dx = Tensor(shape: [s.inputCount])
                let scratch = Tensor(shape: [s.lowPrecisionScratchCount(p)])
                Conv2D.forward(s, x: x.data, packed: packed, bias: bias.data, out: y.data, scratch: scratch.data)
                Conv2D.backwardInput(s, dOut: g.data, packed: packed, dx: dx.data, scratch: scratch.data)
                XCTAssertLessThan(relErr(y, y0), limits[p]!, "\(p) forward \(s)")
                XCTAssertLessThan(relErr(dx, dx0), limits[p]!, "\(p) VJP \(s)")
            }
        }
    }

    func testFusedUpsampleConvolution() {
        let (b, cin, h, w, cout) = (2, 6, 5, 4, 7)
        let x = gaussian(b * cin * h * w, 1), wt = gaussian(cout * cin * 9, 2), bias = gaussian(cout, 3)
        let g = gaussian(b * cout * 4 * h * w, 4)
        let y0 = Tensor(shape: [b * cout * 4 * h * w]), dx0 = Tensor(shape: [b * cin * h * w])
        let s0 = Tensor(shape: [Upsample2xConv3x3.scratchCount(batch: b, cin: cin, h: h, w: w, cout: cout)])
        Upsample2xConv3x3.forward(
            batch: b, cin: cin, h: h, w: w, cout: cout, x: x.data, weight: wt.data, bias: bias.data,
            out: y0.data, scratch: s0.data)
        Upsample2xConv3x3.backwardInput(
            batch: b, cin: cin, h: h, w: w, cout: cout, dOut: g.data, weight: wt.data,
            dx: dx0.data, scratch: s0.data)
        for p in [ComputePrecision.int8, .bf16] {
            let packed = Upsample2xConv3x3.packWeights(p, cin: cin, cout: cout, weight: wt.data)
            let y = Tensor(shape: [y0.count]), dx = Tensor(shape: [dx0.count])
            let s = Tensor(shape: [Upsample2xConv3x3.lowPrecisionScratchCount(p, batch: b, cin: cin, h: h, w: w, cout: cout)])
            Upsample2xConv3x3.forward(
                batch: b, cin: cin, h: h, w: w, cout: cout, x: x.data, packed: packed,
                bias: bias.data, out: y.data, scratch: s.data)
            Upsample2xConv3x3.backwardInput(
                batch: b, cin: cin, h: h, w: w, cout: cout, dOut: g.data, packed: packed,
                dx: dx.data, scratch: s.data)
            XCTAssertLessThan(relErr(y, y0), limits[p]!, "\(p) upsample forward")
            XCTAssertLessThan(relErr(dx, dx0), limits[p]!, "\(p) upsample VJP")
        }
    }
}
