// Nearest 2× upsampling followed by a 3×3 / stride 1 / padding 1 convolution (diffusers `Upsample2D` with
// use_conv=True), computed at the LOW resolution. Each output phase (a, b) = (Y mod 2, X mod 2) only ever sees two
// distinct input rows and two distinct input columns, so the 3×3 kernel collapses to a 2×2 kernel per phase:
//   rows for a = 0: offset −1 ← kernel row 0, offset 0 ← rows 1+2;  a = 1: offset 0 ← rows 0+1, offset +1 ← row 2
// (columns likewise). All four phases share one 2×2 / padding 1 im2col of the low-res input, so the layer is one
// GEMM with M = 4·cout, K = 4·cin, N = (h+1)(w+1): about half the multiply-adds of upsample-then-conv
// (16·(h+1)(w+1) vs 36·hw per cout·cin) and no 4×-sized intermediate.
//   R = conv2x2_pad1(x, Wstack)            Wstack[(a,b,o), c, u, v] = Σ_{i∈S(a,u)} Σ_{j∈S(b,v)} W[o, c, i, j]
//   out[o, 2y+a, 2x+b] = R[(a,b,o), y+a, x+b] + bias[o]
// The VJP scatters dOut back into dR (zeros elsewhere) and runs the 2×2 convolution's input VJP.

/// Fused nearest-2× upsample + 3×3 convolution; x [B, cin, h, w] (low resolution), weight [cout, cin, 3, 3]
/// (the diffusers `conv` of Upsample2D), out [B, cout, 2h, 2w].
public enum Upsample2xConv3x3 {
    /// The low-resolution 2×2 / padding 1 convolution producing all four phases (one batch item).
    static func phaseShape(cin: Int, h: Int, w: Int, cout: Int) -> Conv2DShape {
        Conv2DShape(batch: 1, cin: cin, h: h, w: w, cout: 4 * cout, kernel: 2, stride: 1, padding: 1)
    }

    /// Floats of scratch `forward` and `backwardInput` need.
    public static func scratchCount(batch: Int, cin: Int, h: Int, w: Int, cout: Int) -> Int {
        let t = phaseShape(cin: cin, h: h, w: w, cout: cout)
        return t.weightCount + t.outputCount + t.scratchCount
    }

    /// out = conv3x3(upsample2x(x)) + bias. Overwrites `out`. `scratch` holds `scratchCount(...)` floats.
    public static func forward(
        batch: Int, cin: Int, h: Int, w: Int, cout: Int, x: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let t = phaseShape(cin: cin, h: h, w: w, cout: cout)
        let wStack = scratch, r = scratch + t.weightCount, convScratch = r + t.outputCount
        stackPhaseWeights(cin: cin, cout: cout, weight: weight, into: wStack)
        scatterPhases(batch: batch, cin: cin, h: h, w: w, cout: cout, bias: bias, out: out, r: r) { b in
            Conv2D.forward(t, x: x + b * cin * h * w, weight: wStack, bias: nil, out: r, scratch: convScratch)
        }
    }

    /// `forward` with the stacked phase weights packed for a low-precision mode (`packWeights`).
    /// `scratch` holds `lowPrecisionScratchCount(...)` floats.
    public static func forward(
        batch: Int, cin: Int, h: Int, w: Int, cout: Int, x: UnsafePointer<Float>,
        packed: PackedConvWeights, bias: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let t = phaseShape(cin: cin, h: h, w: w, cout: cout)
        let r = scratch, convScratch = r + t.outputCount
        scatterPhases(batch: batch, cin: cin, h: h, w: w, cout: cout, bias: bias, out: out, r: r) { b in
            Conv2D.forward(t, x: x + b * cin * h * w, packed: packed, bias: nil, out: r, scratch: convScratch)
        }
    }

    /// The 3×3 weight [cout, cin, 3, 3] folded into the four phases' 2×2 kernels, packed for precision `p`.
    public static func packWeights(_ p: ComputePrecision, cin: Int, cout: Int, weight: UnsafePointer<Float>) -> PackedConvWeights {
        let stacked = UnsafeMutablePointer<Float>.allocate(capacity: 16 * cout * cin)
        defer { stacked.deallocate() }
        stackPhaseWeights(cin: cin, cout: cout, weight: weight, into: stacked)
        return PackedConvWeights(p, cout: 4 * cout, patch: 4 * cin, weight: stacked)
    }

    /// Floats of scratch the packed `forward` / `backwardInput` need.
    public static func lowPrecisionScratchCount(_ p: ComputePrecision, batch: Int, cin: Int, h: Int, w: Int, cout: Int) -> Int {
        let t = phaseShape(cin: cin, h: h, w: w, cout: cout)
        return t.outputCount + t.lowPrecisionScratchCount(p)
    }

    /// Runs `phaseConv(b)` (which fills r with the four phases of batch item b) and interleaves r into `out`.
    private static func scatterPhases(
        batch: Int, cin: Int, h: Int, w: Int, cout: Int, bias: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>, r: UnsafeMutablePointer<Float>,
        _ phaseConv: (Int) -> Void
    ) {
        let H = 2 * h, W = 2 * w, rw = w + 1, rPlane = (h + 1) * rw
        for b in 0..<batch {
            phaseConv(b)
            let ob = out + b * cout * H * W
            for o in 0..<cout {
                let bo = bias?[o] ?? 0, plane = ob + o * H * W
                for a in 0..<2 {
                    for bb in 0..<2 {
                        let src = r + ((a * 2 + bb) * cout + o) * rPlane
                        for y in 0..<h {
                            let s = src + (y + a) * rw + bb, d = plane + (2 * y + a) * W + bb
                            var xx = 0
                            while xx < w { d[2 &* xx] = s[xx] + bo; xx &+= 1 }
                        }
                    }
                }
            }
        }
    }

    /// dx [B, cin, h, w] = VJP of `forward` for cotangent dOut [B, cout, 2h, 2w]. Overwrites `dx`.
    public static func backwardInput(
        batch: Int, cin: Int, h: Int, w: Int, cout: Int, dOut: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let t = phaseShape(cin: cin, h: h, w: w, cout: cout)
        let wStack = scratch, dR = scratch + t.weightCount, convScratch = dR + t.outputCount
        stackPhaseWeights(cin: cin, cout: cout, weight: weight, into: wStack)
        gatherPhases(batch: batch, h: h, w: w, cout: cout, dOut: dOut, dR: dR, outputCount: t.outputCount) { b in
            Conv2D.backwardInput(t, dOut: dR, weight: wStack, dx: dx + b * cin * h * w, scratch: convScratch)
        }
    }

    /// `backwardInput` with packed stacked weights (`packWeights`).
    public static func backwardInput(
        batch: Int, cin: Int, h: Int, w: Int, cout: Int, dOut: UnsafePointer<Float>,
        packed: PackedConvWeights, dx: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let t = phaseShape(cin: cin, h: h, w: w, cout: cout)
        let dR = scratch, convScratch = dR + t.outputCount
        gatherPhases(batch: batch, h: h, w: w, cout: cout, dOut: dOut, dR: dR, outputCount: t.outputCount) { b in
            Conv2D.backwardInput(t, dOut: dR, packed: packed, dx: dx + b * cin * h * w, scratch: convScratch)
        }
    }

    /// For each batch item: scatters dOut's four phases into dR (zeros elsewhere), then `phaseVJP(b)`.
    private static func gatherPhases(
        batch: Int, h: Int, w: Int, cout: Int, dOut: UnsafePointer<Float>,
        dR: UnsafeMutablePointer<Float>, outputCount: Int, _ phaseVJP: (Int) -> Void
    ) {
        let H = 2 * h, W = 2 * w, rw = w + 1, rPlane = (h + 1) * rw
        for b in 0..<batch {
            dR.update(repeating: 0, count: outputCount)
            let gb = dOut + b * cout * H * W
            for o in 0..<cout {
                let plane = gb + o * H * W
                for a in 0..<2 {
                    for bb in 0..<2 {
                        let dst = dR + ((a * 2 + bb) * cout + o) * rPlane
                        for y in 0..<h {
                            let s = plane + (2 * y + a) * W + bb, d = dst + (y + a) * rw + bb
                            var xx = 0
                            while xx < w { d[xx] = s[2 &* xx]; xx &+= 1 }
                        }
                    }
                }
            }
            phaseVJP(b)
        }
    }

    /// Wstack[(a, b, o), c, u, v] = Σ of the 3×3 taps that phase (a, b) maps onto low-res tap (u, v).
    static func stackPhaseWeights(
        cin: Int, cout: Int, weight: UnsafePointer<Float>,
        into wStack: UnsafeMutablePointer<Float>
    ) {
        let phaseStride = cout * cin * 4
        for oc in 0..<(cout * cin) {
            let k = weight + oc * 9
            // fold rows: phase a = 0 → (row 0, rows 1+2); a = 1 → (rows 0+1, row 2); then columns the same way
            for a in 0..<2 {
                for u in 0..<2 {
                    var c = (Float(0), Float(0), Float(0))
                    switch (a, u) {
                    case (0, 0): c = (k[0], k[1], k[2])
                    case (0, 1): c = (k[3] + k[6], k[4] + k[7], k[5] + k[8])
                    case (1, 0): c = (k[0] + k[3], k[1] + k[4], k[2] + k[5])
                    default: c = (k[6], k[7], k[8])
                    }
                    let d0 = wStack + (a * 2 + 0) * phaseStride + oc * 4 + u * 2
                    d0[0] = c.0; d0[1] = c.1 + c.2
                    let d1 = wStack + (a * 2 + 1) * phaseStride + oc * 4 + u * 2
                    d1[0] = c.0 + c.1; d1[1] = c.2
                }
            }
        }
    }
}
