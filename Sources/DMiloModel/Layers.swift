// Parameterised layers bound to checkpoint tensors: thin wrappers that give DMiloKernels calls their weights and
// scratch. Names are diffusers state-dict prefixes (e.g. "down_blocks.0.resnets.1.conv1").

import DMiloKernels

/// nn.Conv2d with square kernel, bias.
struct ConvLayer {
    let weight: Parameter, bias: Parameter
    let cin, cout, kernel, stride, padding: Int

    init(_ store: ParameterStore, _ prefix: String, cin: Int, cout: Int, kernel: Int, stride: Int = 1, padding: Int) {
        weight = store.declare(prefix + ".weight", [cout, cin, kernel, kernel])  // may stay compressed (WeightResidency)
        bias = store.declare(prefix + ".bias", [cout])
        self.cin = cin; self.cout = cout; self.kernel = kernel; self.stride = stride; self.padding = padding
        let patch = cin * kernel * kernel
        weight.packer = { PackedConvWeights($0, cout: cout, patch: patch, weight: $1) }
    }

    func shape(_ batch: Int, _ h: Int, _ w: Int) -> Conv2DShape {
        Conv2DShape(batch: batch, cin: cin, h: h, w: w, cout: cout, kernel: kernel, stride: stride, padding: padding)
    }

    func forward(_ ws: Workspace, _ batch: Int, _ h: Int, _ w: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let s = shape(batch, h, w)
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        if let pk = weight.packed {
            Conv2D.forward(
                s, x: x, packed: pk, bias: bias.ptr, out: out,
                scratch: ws.temp.alloc(s.lowPrecisionScratchCount(pk.precision)))
            return
        }
        Conv2D.forward(s, x: x, weight: weight.values(ws), bias: bias.ptr, out: out, scratch: ws.temp.alloc(s.scratchCount))
    }

    /// dx (input-sized) from dOut; overwrites dx.
    func backward(_ ws: Workspace, _ batch: Int, _ h: Int, _ w: Int, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let s = shape(batch, h, w)
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        if let pk = weight.packed {
            Conv2D.backwardInput(s, dOut: dOut, packed: pk, dx: dx, scratch: ws.temp.alloc(s.lowPrecisionScratchCount(pk.precision)))
            return
        }
        Conv2D.backwardInput(s, dOut: dOut, weight: weight.values(ws), dx: dx, scratch: ws.temp.alloc(s.scratchCount))
    }

    func flops(_ batch: Int, _ h: Int, _ w: Int) -> Int { shape(batch, h, w).flops }
}

/// nn.GroupNorm (affine).
struct GroupNormLayer {
    let gamma: Parameter, beta: Parameter
    let channels, groups: Int
    let eps: Float

    init(_ store: ParameterStore, _ prefix: String, channels: Int, groups: Int, eps: Float) {
        gamma = store.declare(prefix + ".weight", [channels])
        beta = store.declare(prefix + ".bias", [channels])
        self.channels = channels; self.groups = groups; self.eps = eps
    }

    func forward(
        _ batch: Int, _ spatial: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
        mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>
    ) {
        GroupNorm.forward(
            batch: batch, channels: channels, spatial: spatial, groups: groups, eps: eps, x: x,
            gamma: gamma.ptr, beta: beta.ptr, out: out, mean: mean, rstd: rstd)
    }

    func backward(
        _ batch: Int, _ spatial: Int, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>
    ) {
        GroupNorm.backwardInput(
            batch: batch, channels: channels, spatial: spatial, groups: groups, x: x, gamma: gamma.ptr,
            mean: mean, rstd: rstd, dOut: dOut, dx: dx)
    }
}

/// nn.Linear with bias, or output rows [rowOffset, rowOffset + outF) of one (a fused projection such as ADM's qkv).
struct LinearLayer {
    let weight: Parameter, bias: Parameter
    let inF, outF: Int
    let rowOffset: Int

    init(_ store: ParameterStore, _ prefix: String, inF: Int, outF: Int) {
        weight = store.declare(prefix + ".weight", [outF, inF])
        bias = store.declare(prefix + ".bias", [outF])
        self.inF = inF; self.outF = outF; rowOffset = 0
    }

    /// Rows [rowOffset, rowOffset + outF) of an already declared [rows, inF(, 1…)] weight and its bias.
    init(slice weight: Parameter, bias: Parameter, inF: Int, outF: Int, rowOffset: Int) {
        precondition(weight.count >= (rowOffset + outF) * inF && bias.count >= rowOffset + outF)
        self.weight = weight; self.bias = bias; self.inF = inF; self.outF = outF; self.rowOffset = rowOffset
    }

    private var w: UnsafePointer<Float> { weight.ptr + rowOffset * inF }
    private var b: UnsafePointer<Float> { bias.ptr + rowOffset }

    func forward(_ n: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        Linear.forward(n: n, inF: inF, outF: outF, x: x, weight: w, bias: b, out: out)
    }

    func backward(_ n: Int, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        Linear.backwardInput(n: n, inF: inF, outF: outF, dOut: dOut, weight: w, dx: dx)
    }

    func flops(_ n: Int) -> Int { 2 * n * inF * outF }
}

/// A network stage with a forward that records what its input VJP needs (in the module itself: one live tape per
/// model) and the VJP. `backward` overwrites `dx`.
protocol Step: AnyObject {
    func outputGeometry(_ g: Geometry) -> Geometry
    func forward(_ ws: Workspace, _ g: Geometry, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>)
    func backward(_ ws: Workspace, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>)
    /// Multiply-add×2 count of one forward at input geometry g.
    func flops(_ g: Geometry) -> Int
    /// Floats this step keeps on the tape (recording mode) at input geometry g, beyond its output.
    func tapeCount(_ g: Geometry) -> Int
}

/// out[i] = (a[i] + b[i]) / s, elementwise (residual add divided by the output scale factor, as diffusers does).
@inline(__always)
func addScaled(_ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ s: Float, _ out: UnsafeMutablePointer<Float>) {
    var i = 0
    if s == 1 { while i < n { out[i] = a[i] + b[i]; i &+= 1 } } else { while i < n { out[i] = (a[i] + b[i]) / s; i &+= 1 } }
}
