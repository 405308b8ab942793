// diffusers ResnetBlock2D (time_embedding_norm "default" or "scale_shift"):
//   h = conv1(silu(norm1(x)));  default: h += proj(silu(temb))[:, :, None, None];  h = norm2(h)
//                               scale_shift: h = norm2(h)·(1 + scale) + shift, (scale, shift) = chunk(proj(silu(temb)), 2)
//   h = conv2(silu(h));  out = (shortcut(x) + h) / output_scale_factor,  shortcut = 1×1 conv when channels change
// Tape: x (by reference), h1 = norm2 input, GroupNorm statistics and the time projection. The norm outputs are
// recomputed in the VJP (one cheap GroupNorm pass each) instead of being stored: halves the tape.

import DMiloKernels

final class ResnetBlock: Step {
    let norm1: GroupNormLayer, conv1: ConvLayer, timeProj: LinearLayer, norm2: GroupNormLayer, conv2: ConvLayer
    let shortcut: ConvLayer?
    let scaleShift: Bool
    let outputScale: Float
    let cin, cout: Int
    /// silu(temb) [B, timeEmbedDim], set by the model before each pass.
    var tembAct: UnsafePointer<Float>?

    // tape
    private var g = Geometry(batch: 0, channels: 0, height: 0, width: 0)
    private var x: UnsafePointer<Float>?
    private var h1: UnsafeMutablePointer<Float>?, tp: UnsafeMutablePointer<Float>?
    private var mean1: UnsafeMutablePointer<Float>?, rstd1: UnsafeMutablePointer<Float>?
    private var mean2: UnsafeMutablePointer<Float>?, rstd2: UnsafeMutablePointer<Float>?

    init(_ store: ParameterStore, _ p: String, cin: Int, cout: Int, temb: Int, groups: Int, eps: Float,
         scaleShift: Bool, outputScale: Float) {
        norm1 = GroupNormLayer(store, p + ".norm1", channels: cin, groups: groups, eps: eps)
        conv1 = ConvLayer(store, p + ".conv1", cin: cin, cout: cout, kernel: 3, padding: 1)
        timeProj = LinearLayer(store, p + ".time_emb_proj", inF: temb, outF: scaleShift ? 2 * cout : cout)
        norm2 = GroupNormLayer(store, p + ".norm2", channels: cout, groups: groups, eps: eps)
        conv2 = ConvLayer(store, p + ".conv2", cin: cout, cout: cout, kernel: 3, padding: 1)
        shortcut = cin == cout ? nil : ConvLayer(store, p + ".conv_shortcut", cin: cin, cout: cout, kernel: 1, padding: 0)
        self.scaleShift = scaleShift; self.outputScale = outputScale; self.cin = cin; self.cout = cout
    }

    func outputGeometry(_ g: Geometry) -> Geometry { Geometry(batch: g.batch, channels: cout, height: g.height, width: g.width) }

    func flops(_ g: Geometry) -> Int {
        conv1.flops(g.batch, g.height, g.width) + conv2.flops(g.batch, g.height, g.width)
            + (shortcut?.flops(g.batch, g.height, g.width) ?? 0) + timeProj.flops(g.batch)
    }

    func tapeCount(_ g: Geometry) -> Int { 4 * g.batch * norm1.groups + g.batch * (cout * g.spatial + timeProj.outF) + 64 }

    func forward(_ ws: Workspace, _ g: Geometry, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let B = g.batch, HW = g.spatial, G = norm1.groups
        let m = ws.temp.mark
        defer { ws.temp.release(to: m) }
        self.g = g; self.x = x
        let mean1 = ws.keep(B * G), rstd1 = ws.keep(B * G), mean2 = ws.keep(B * G), rstd2 = ws.keep(B * G)
        let h1 = ws.keep(B * cout * HW), tp = ws.keep(B * timeProj.outF)
        self.mean1 = mean1; self.rstd1 = rstd1; self.mean2 = mean2; self.rstd2 = rstd2; self.h1 = h1; self.tp = tp

        let t0 = ws.temp.alloc(B * cin * HW)
        norm1.forward(B, HW, x: x, out: t0, mean: mean1, rstd: rstd1)
        SiLU.forward(count: B * cin * HW, x: t0, out: t0)
        conv1.forward(ws, B, g.height, g.width, x: t0, out: h1)
        timeProj.forward(B, x: tembAct!, out: tp)
        if !scaleShift { addChannelBias(B, cout, HW, h1, tp, stride: cout) }
        let t1 = ws.temp.alloc(B * cout * HW)
        norm2Activation(B, HW, into: t1)
        SiLU.forward(count: B * cout * HW, x: t1, out: t1)
        conv2.forward(ws, B, g.height, g.width, x: t1, out: out)
        var sc = x
        if let shortcut {
            let s = ws.temp.alloc(B * cout * HW)
            shortcut.forward(ws, B, g.height, g.width, x: x, out: s)
            sc = UnsafePointer(s)
        }
        addScaled(B * cout * HW, sc, out, outputScale, out)
    }

    /// t = norm2(h1), then the scale-shift modulation when configured (the SiLU input).
    private func norm2Activation(_ B: Int, _ HW: Int, into t: UnsafeMutablePointer<Float>) {
        norm2.forward(B, HW, x: h1!, out: t, mean: mean2!, rstd: rstd2!)
        guard scaleShift, let tp else { return }
        for b in 0..<B {
            for c in 0..<cout {
                let scale = 1 + tp[b * 2 * cout + c], shift = tp[b * 2 * cout + cout + c]
                let row = t + (b * cout + c) * HW
                var i = 0
                while i < HW { row[i] = row[i] * scale + shift; i &+= 1 }
            }
        }
    }

    func backward(_ ws: Workspace, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let B = g.batch, HW = g.spatial, H = g.height, W = g.width
        let nOut = B * cout * HW, nIn = B * cin * HW
        let m = ws.temp.mark
        defer { ws.temp.release(to: m) }
        // d(out)/d(shortcut) = d(out)/d(h) = 1/outputScale
        let gOut: UnsafePointer<Float>
        if outputScale == 1 { gOut = dOut } else {
            let s = ws.temp.alloc(nOut)
            var i = 0
            while i < nOut { s[i] = dOut[i] / outputScale; i &+= 1 }
            gOut = UnsafePointer(s)
        }
        if let shortcut { shortcut.backward(ws, B, H, W, dOut: gOut, dx: dx) } else { dx.update(from: gOut, count: nIn) }

        let t1 = ws.temp.alloc(nOut)
        norm2Activation(B, HW, into: t1)  // recompute the SiLU input
        let dh = ws.temp.alloc(nOut)
        conv2.backward(ws, B, H, W, dOut: gOut, dx: dh)
        SiLU.backwardInput(count: nOut, x: t1, dOut: dh, dx: dh)
        if scaleShift, let tp {
            for b in 0..<B {
                for c in 0..<cout {
                    let scale = 1 + tp[b * 2 * cout + c]
                    let row = dh + (b * cout + c) * HW
                    var i = 0
                    while i < HW { row[i] *= scale; i &+= 1 }
                }
            }
        }
        norm2.backward(B, HW, x: h1!, mean: mean2!, rstd: rstd2!, dOut: dh, dx: dh)  // temb term is constant in x

        let t0 = ws.temp.alloc(nIn)
        norm1.forward(B, HW, x: x!, out: t0, mean: mean1!, rstd: rstd1!)  // recompute the SiLU input
        let d0 = ws.temp.alloc(nIn)
        conv1.backward(ws, B, H, W, dOut: dh, dx: d0)
        SiLU.backwardInput(count: nIn, x: t0, dOut: d0, dx: d0)
        norm1.backward(B, HW, x: x!, mean: mean1!, rstd: rstd1!, dOut: d0, dx: d0)
        Vec.axpy(nIn, 1, d0, dx)
    }
}

/// x[b, c, :] += v[b·stride + c] for a [B, C, HW] buffer.
func addChannelBias(_ B: Int, _ C: Int, _ HW: Int, _ x: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, stride: Int) {
    for b in 0..<B {
        for c in 0..<C {
            let a = v[b * stride + c], row = x + (b * C + c) * HW
            var i = 0
            while i < HW { row[i] += a; i &+= 1 }
        }
    }
}
