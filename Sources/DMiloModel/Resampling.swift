// The conv stages of a UNet body: stem, downsamplers (diffusers Downsample2D / Upsample2D with use_conv=True), head.

import DMiloKernels

/// A conv stage: the stem conv (conv_in) or a 3×3 stride-2 downsampler (diffusers Downsample2D(use_conv=True),
/// guided-diffusion Downsample(use_conv=True), which names it `op`). diffusers pads (0, 1, 0, 1) explicitly when
/// downsample_padding is 0 (right/bottom only).
final class ConvStep: Step {
    let conv: ConvLayer
    let asymmetric: Bool
    private var g = Geometry(batch: 0, channels: 0, height: 0, width: 0)

    init(_ conv: ConvLayer) {
        self.conv = conv
        asymmetric = conv.stride == 2 && conv.padding == 0
    }

    /// diffusers Downsample2D at prefix `p`.
    convenience init(downsample store: ParameterStore, _ p: String, channels: Int, padding: Int) {
        self.init(ConvLayer(store, p + ".conv", cin: channels, cout: channels, kernel: 3, stride: 2, padding: padding))
    }

    private func inner(_ g: Geometry) -> (Int, Int) { asymmetric ? (g.height + 1, g.width + 1) : (g.height, g.width) }

    func outputGeometry(_ g: Geometry) -> Geometry {
        let (h, w) = inner(g)
        let s = conv.shape(g.batch, h, w)
        return Geometry(batch: g.batch, channels: conv.cout, height: s.hOut, width: s.wOut)
    }

    func flops(_ g: Geometry) -> Int { let (h, w) = inner(g); return conv.flops(g.batch, h, w) }
    func tapeCount(_ g: Geometry) -> Int { 0 }

    func forward(_ ws: Workspace, _ g: Geometry, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        self.g = g
        guard asymmetric else { conv.forward(ws, g.batch, g.height, g.width, x: x, out: out); return }
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        let (h, w) = inner(g)
        let padded = ws.temp.alloc(g.batch * g.channels * h * w)
        padded.initialize(repeating: 0, count: g.batch * g.channels * h * w)
        for plane in 0..<(g.batch * g.channels) {
            for r in 0..<g.height {
                (padded + plane * h * w + r * w).update(from: x + plane * g.spatial + r * g.width, count: g.width)
            }
        }
        conv.forward(ws, g.batch, h, w, x: padded, out: out)
    }

    func backward(_ ws: Workspace, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        guard asymmetric else { conv.backward(ws, g.batch, g.height, g.width, dOut: dOut, dx: dx); return }
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        let (h, w) = inner(g)
        let dp = ws.temp.alloc(g.batch * g.channels * h * w)
        conv.backward(ws, g.batch, h, w, dOut: dOut, dx: dp)
        for plane in 0..<(g.batch * g.channels) {  // adjoint of zero padding = crop
            for r in 0..<g.height {
                (dx + plane * g.spatial + r * g.width).update(from: dp + plane * h * w + r * w, count: g.width)
            }
        }
    }
}

/// Nearest 2× upsampling followed by a 3×3 conv, computed at low resolution by the fused kernel
/// (`Upsample2xConv3x3`: half the multiply-adds and no 4×-sized intermediate).
final class Upsample: Step {
    let conv: ConvLayer
    private var g = Geometry(batch: 0, channels: 0, height: 0, width: 0)

    init(_ store: ParameterStore, _ p: String, channels: Int) {
        conv = ConvLayer(store, p + ".conv", cin: channels, cout: channels, kernel: 3, padding: 1)
        // low-precision modes pack the four phases' folded 2×2 kernels, not the 3×3 kernel
        conv.weight.packer = { Upsample2xConv3x3.packWeights($0, cin: channels, cout: channels, weight: $1) }
    }

    func outputGeometry(_ g: Geometry) -> Geometry { Geometry(batch: g.batch, channels: conv.cout, height: 2 * g.height, width: 2 * g.width) }
    /// FLOPs of the equivalent upsample-then-conv (what PyTorch executes), so GFLOPS compare like for like.
    func flops(_ g: Geometry) -> Int { conv.flops(g.batch, 2 * g.height, 2 * g.width) }
    func tapeCount(_ g: Geometry) -> Int { 0 }

    private func scratch(_ ws: Workspace) -> UnsafeMutablePointer<Float> {
        ws.temp.alloc(Upsample2xConv3x3.scratchCount(batch: g.batch, cin: conv.cin, h: g.height, w: g.width, cout: conv.cout))
    }

    private func lowPrecisionScratch(_ ws: Workspace, _ pk: PackedConvWeights) -> UnsafeMutablePointer<Float> {
        ws.temp.alloc(
            Upsample2xConv3x3.lowPrecisionScratchCount(
                pk.precision, batch: g.batch, cin: conv.cin, h: g.height,
                w: g.width, cout: conv.cout))
    }

    func forward(_ ws: Workspace, _ g: Geometry, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        self.g = g
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        if let pk = conv.weight.packed {
            Upsample2xConv3x3.forward(
                batch: g.batch, cin: conv.cin, h: g.height, w: g.width, cout: conv.cout, x: x, packed: pk,
                bias: conv.bias.ptr, out: out, scratch: lowPrecisionScratch(ws, pk))
            return
        }
        Upsample2xConv3x3.forward(
            batch: g.batch, cin: conv.cin, h: g.height, w: g.width, cout: conv.cout, x: x,
            weight: conv.weight.values(ws), bias: conv.bias.ptr, out: out, scratch: scratch(ws))
    }

    func backward(_ ws: Workspace, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        if let pk = conv.weight.packed {
            Upsample2xConv3x3.backwardInput(
                batch: g.batch, cin: conv.cin, h: g.height, w: g.width, cout: conv.cout, dOut: dOut,
                packed: pk, dx: dx, scratch: lowPrecisionScratch(ws, pk))
            return
        }
        Upsample2xConv3x3.backwardInput(
            batch: g.batch, cin: conv.cin, h: g.height, w: g.width, cout: conv.cout, dOut: dOut,
            weight: conv.weight.values(ws), dx: dx, scratch: scratch(ws))
    }
}

/// Output head: conv_out(silu(conv_norm_out(x))).
final class OutputHead: Step {
    let norm: GroupNormLayer, conv: ConvLayer
    private var g = Geometry(batch: 0, channels: 0, height: 0, width: 0)
    private var x: UnsafePointer<Float>?, mean: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?

    init(norm: GroupNormLayer, conv: ConvLayer) { self.norm = norm; self.conv = conv }
    func outputGeometry(_ g: Geometry) -> Geometry { Geometry(batch: g.batch, channels: conv.cout, height: g.height, width: g.width) }
    func flops(_ g: Geometry) -> Int { conv.flops(g.batch, g.height, g.width) }

    func tapeCount(_ g: Geometry) -> Int { 2 * g.batch * norm.groups + 32 }

    func forward(_ ws: Workspace, _ g: Geometry, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        self.g = g; self.x = x
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        let mean = ws.keep(g.batch * norm.groups), rstd = ws.keep(g.batch * norm.groups)
        self.mean = mean; self.rstd = rstd
        let t = ws.temp.alloc(g.count)
        norm.forward(g.batch, g.spatial, x: x, out: t, mean: mean, rstd: rstd)
        SiLU.forward(count: g.count, x: t, out: t)
        conv.forward(ws, g.batch, g.height, g.width, x: t, out: out)
    }

    func backward(_ ws: Workspace, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        let t = ws.temp.alloc(g.count)
        norm.forward(g.batch, g.spatial, x: x!, out: t, mean: mean!, rstd: rstd!)  // recompute the SiLU input
        conv.backward(ws, g.batch, g.height, g.width, dOut: dOut, dx: dx)
        SiLU.backwardInput(count: g.count, x: t, dOut: dx, dx: dx)
        norm.backward(g.batch, g.spatial, x: x!, mean: mean!, rstd: rstd!, dOut: dx, dx: dx)
    }
}
