// diffusers ResnetBlock2D (time_embedding_norm "default" or "scale_shift"):
//   h = conv1(silu(norm1(x)));  default: h += proj(silu(temb))[:, :, None, None];  h = norm2(h)
//                               scale_shift: h = norm2(h)·(1 + scale) + shift, (scale, shift) = chunk(proj(silu(temb)), 2)
//   h = conv2(silu(h));  out = (shortcut(x) + h) / output_scale_factor,  shortcut = 1×1 conv when channels change
// With `up`/`down` (diffusers ResnetBlock2D(up/down=True), guided-diffusion ResBlock(up/down=True) of
// resblock_updown): nearest 2× upsampling or 2×2 average pooling is applied to silu(norm1(x)) before conv1 and to
// x before the shortcut, so conv1 and everything after it run at the new resolution.
// The same block is guided-diffusion's ResBlock under other tensor names (`ResnetNames.adm`).
// Tape: x (by reference), h1 = norm2 input, GroupNorm statistics and the time projection. The norm outputs are
// recomputed in the VJP (one cheap GroupNorm pass each) instead of being stored: halves the tape.

import DMiloKernels

/// Checkpoint names of a resnet block's tensors (prefixes of `.weight` / `.bias`).
struct ResnetNames {
    var norm1, conv1, timeProj, norm2, conv2, shortcut: String

    /// diffusers ResnetBlock2D.
    static func diffusers(_ p: String) -> ResnetNames {
        ResnetNames(
            norm1: p + ".norm1", conv1: p + ".conv1", timeProj: p + ".time_emb_proj", norm2: p + ".norm2",
            conv2: p + ".conv2", shortcut: p + ".conv_shortcut")
    }

    /// guided-diffusion ResBlock: in_layers = [GroupNorm32, SiLU, conv], emb_layers = [SiLU, Linear],
    /// out_layers = [GroupNorm32, SiLU, Dropout, conv], skip_connection = 1×1 conv (use_conv=False).
    static func adm(_ p: String) -> ResnetNames {
        ResnetNames(
            norm1: p + ".in_layers.0", conv1: p + ".in_layers.2", timeProj: p + ".emb_layers.1",
            norm2: p + ".out_layers.0", conv2: p + ".out_layers.3", shortcut: p + ".skip_connection")
    }
}

/// Resolution change inside a resnet block.
enum ResnetResample { case none, up, down }

final class ResnetBlock: Step {
    let norm1: GroupNormLayer, conv1: ConvLayer, timeProj: LinearLayer, norm2: GroupNormLayer, conv2: ConvLayer
    let shortcut: ConvLayer?
    let scaleShift: Bool
    let outputScale: Float
    let cin, cout: Int
    let resample: ResnetResample
    /// silu(temb) [B, timeEmbedDim], set by the model before each pass.
    var tembAct: UnsafePointer<Float>?

    // tape
    private var g = Geometry(batch: 0, channels: 0, height: 0, width: 0)
    private var x: UnsafePointer<Float>?
    private var h1: UnsafeMutablePointer<Float>?, tp: UnsafeMutablePointer<Float>?
    private var mean1: UnsafeMutablePointer<Float>?, rstd1: UnsafeMutablePointer<Float>?
    private var mean2: UnsafeMutablePointer<Float>?, rstd2: UnsafeMutablePointer<Float>?

    init(
        _ store: ParameterStore, _ names: ResnetNames, cin: Int, cout: Int, temb: Int, groups: Int, eps: Float,
        scaleShift: Bool, outputScale: Float, resample: ResnetResample = .none
    ) {
        norm1 = GroupNormLayer(store, names.norm1, channels: cin, groups: groups, eps: eps)
        conv1 = ConvLayer(store, names.conv1, cin: cin, cout: cout, kernel: 3, padding: 1)
        timeProj = LinearLayer(store, names.timeProj, inF: temb, outF: scaleShift ? 2 * cout : cout)
        norm2 = GroupNormLayer(store, names.norm2, channels: cout, groups: groups, eps: eps)
        conv2 = ConvLayer(store, names.conv2, cin: cout, cout: cout, kernel: 3, padding: 1)
        shortcut = cin == cout ? nil : ConvLayer(store, names.shortcut, cin: cin, cout: cout, kernel: 1, padding: 0)
        self.scaleShift = scaleShift; self.outputScale = outputScale; self.cin = cin; self.cout = cout
        self.resample = resample
    }

    /// Spatial size after the block's resampling.
    private func resampled(_ g: Geometry) -> (Int, Int) {
        switch resample {
        case .none: return (g.height, g.width)
        case .up: return (2 * g.height, 2 * g.width)
        case .down: return (g.height / 2, g.width / 2)
        }
    }

    func outputGeometry(_ g: Geometry) -> Geometry {
        let (h, w) = resampled(g)
        return Geometry(batch: g.batch, channels: cout, height: h, width: w)
    }

    func flops(_ g: Geometry) -> Int {
        let (h, w) = resampled(g)
        return conv1.flops(g.batch, h, w) + conv2.flops(g.batch, h, w) + (shortcut?.flops(g.batch, h, w) ?? 0)
            + timeProj.flops(g.batch)
    }

    func tapeCount(_ g: Geometry) -> Int {
        let (h, w) = resampled(g)
        return 4 * g.batch * norm1.groups + g.batch * (cout * h * w + timeProj.outF) + 64
    }

    /// Nearest 2× / 2×2 average pooling of a [B, C, g.height, g.width] buffer (`.none`: not called).
    private func resampleForward(_ B: Int, _ C: Int, _ g: Geometry, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        let f =
            resample == .up
            ? Upsample2x.forward(batch:channels:h:w:x:out:) : AvgPool2x.forward(batch:channels:h:w:x:out:)
        f(B, C, g.height, g.width, x, out)
    }

    /// VJP of `resampleForward`: dOut at the resampled size, dx at g's size.
    private func resampleBackward(_ B: Int, _ C: Int, _ g: Geometry, _ dOut: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        let f =
            resample == .up
            ? Upsample2x.backwardInput(batch:channels:h:w:dOut:dx:)
            : AvgPool2x.backwardInput(batch:channels:h:w:dOut:dx:)
        f(B, C, g.height, g.width, dOut, dx)
    }

    func forward(_ ws: Workspace, _ g: Geometry, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let B = g.batch, HW = g.spatial, G = norm1.groups
        let (H2, W2) = resampled(g), HW2 = H2 * W2
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        self.g = g; self.x = x
        let mean1 = ws.keep(B * G), rstd1 = ws.keep(B * G), mean2 = ws.keep(B * G), rstd2 = ws.keep(B * G)
        let h1 = ws.keep(B * cout * HW2), tp = ws.keep(B * timeProj.outF)
        self.mean1 = mean1; self.rstd1 = rstd1; self.mean2 = mean2; self.rstd2 = rstd2; self.h1 = h1; self.tp = tp

        var t0 = ws.temp.alloc(B * cin * HW)
        norm1.forward(B, HW, x: x, out: t0, mean: mean1, rstd: rstd1)
        SiLU.forward(count: B * cin * HW, x: t0, out: t0)
        var xs = x  // the shortcut's input: x, resampled like h
        if resample != .none {
            let r = ws.temp.alloc(B * cin * HW2)
            resampleForward(B, cin, g, t0, r)
            t0 = r
            let xr = ws.temp.alloc(B * cin * HW2)
            resampleForward(B, cin, g, x, xr)
            xs = UnsafePointer(xr)
        }
        conv1.forward(ws, B, H2, W2, x: t0, out: h1)
        timeProj.forward(B, x: tembAct!, out: tp)
        if !scaleShift { Vec.channelAffine(B, cout, HW2, h1, onePlusScale: nil, shift: tp, stride: cout) }
        let t1 = ws.temp.alloc(B * cout * HW2)
        norm2Activation(B, HW2, into: t1)
        SiLU.forward(count: B * cout * HW2, x: t1, out: t1)
        conv2.forward(ws, B, H2, W2, x: t1, out: out)
        var sc = xs
        if let shortcut {
            let s = ws.temp.alloc(B * cout * HW2)
            shortcut.forward(ws, B, H2, W2, x: xs, out: s)
            sc = UnsafePointer(s)
        }
        addScaled(B * cout * HW2, sc, out, outputScale, out)
    }

    /// t = norm2(h1), then the scale-shift modulation when configured (the SiLU input).
    private func norm2Activation(_ B: Int, _ HW: Int, into t: UnsafeMutablePointer<Float>) {
        norm2.forward(B, HW, x: h1!, out: t, mean: mean2!, rstd: rstd2!)
        guard scaleShift, let tp else { return }
        Vec.channelAffine(B, cout, HW, t, onePlusScale: tp, shift: tp + cout, stride: 2 * cout)
    }

    func backward(_ ws: Workspace, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let B = g.batch, HW0 = g.spatial
        let (H, W) = resampled(g), HW = H * W  // conv1 onwards run at the resampled size
        let nOut = B * cout * HW, nIn = B * cin * HW, nIn0 = B * cin * HW0
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        // d(out)/d(shortcut) = d(out)/d(h) = 1/outputScale
        let gOut: UnsafePointer<Float>
        if outputScale == 1 {
            gOut = dOut
        } else {
            let s = ws.temp.alloc(nOut)
            var i = 0
            while i < nOut { s[i] = dOut[i] / outputScale; i &+= 1 }
            gOut = UnsafePointer(s)
        }
        // shortcut path; with resampling it ends at the resampled x, which is spread back to x's size
        let dxs = resample == .none ? dx : ws.temp.alloc(nIn)
        if let shortcut { shortcut.backward(ws, B, H, W, dOut: gOut, dx: dxs) } else { dxs.update(from: gOut, count: nIn) }
        if resample != .none { resampleBackward(B, cin, g, dxs, dx) }

        let t1 = ws.temp.alloc(nOut)
        norm2Activation(B, HW, into: t1)  // recompute the SiLU input
        let dh = ws.temp.alloc(nOut)
        conv2.backward(ws, B, H, W, dOut: gOut, dx: dh)
        SiLU.backwardInput(count: nOut, x: t1, dOut: dh, dx: dh)
        if scaleShift, let tp { Vec.channelAffine(B, cout, HW, dh, onePlusScale: tp, shift: nil, stride: 2 * cout) }
        norm2.backward(B, HW, x: h1!, mean: mean2!, rstd: rstd2!, dOut: dh, dx: dh)  // temb term is constant in x

        let t0 = ws.temp.alloc(nIn0)
        norm1.forward(B, HW0, x: x!, out: t0, mean: mean1!, rstd: rstd1!)  // recompute the SiLU input
        var d0 = ws.temp.alloc(nIn)
        conv1.backward(ws, B, H, W, dOut: dh, dx: d0)
        if resample != .none {
            let d = ws.temp.alloc(nIn0)
            resampleBackward(B, cin, g, d0, d)
            d0 = d
        }
        SiLU.backwardInput(count: nIn0, x: t0, dOut: d0, dx: d0)
        norm1.backward(B, HW0, x: x!, mean: mean1!, rstd: rstd1!, dOut: d0, dx: d0)
        Vec.axpy(nIn0, 1, d0, dx)
    }
}
