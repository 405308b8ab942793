// diffusers `Attention` as used by AttnDownBlock2D / AttnUpBlock2D / UNetMidBlock2D on 4-D input
// (AttnProcessor2_0, residual_connection=True):
//   r = x;  h = group_norm(x) (when present);  tokens = h viewed [B, HW, C]
//   q, k, v = to_q/to_k/to_v(tokens);  o = softmax(q kᵀ / sqrt(d)) v  per head (heads = C / attention_head_dim)
//   out = (to_out.0(o) viewed back [B, C, H, W] + r) / rescale_output_factor
// Tape: x (by reference), GroupNorm statistics, q, k, v and the attention probabilities.

import DMiloKernels

final class AttentionBlock: Step {
    let norm: GroupNormLayer?
    let toQ: LinearLayer, toK: LinearLayer, toV: LinearLayer, toOut: LinearLayer
    let channels, heads, headDim: Int
    let rescale: Float

    private var g = Geometry(batch: 0, channels: 0, height: 0, width: 0)
    private var x: UnsafePointer<Float>?
    private var mean: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?
    private var q: UnsafeMutablePointer<Float>?, k: UnsafeMutablePointer<Float>?, v: UnsafeMutablePointer<Float>?
    private var probs: UnsafeMutablePointer<Float>?

    convenience init(_ store: ParameterStore, _ p: String, channels: Int, headDim: Int, groups: Int?, eps: Float, rescale: Float) {
        let heads = channels / headDim, inner = heads * headDim
        self.init(
            norm: groups.map { GroupNormLayer(store, p + ".group_norm", channels: channels, groups: $0, eps: eps) },
            toQ: LinearLayer(store, p + ".to_q", inF: channels, outF: inner),
            toK: LinearLayer(store, p + ".to_k", inF: channels, outF: inner),
            toV: LinearLayer(store, p + ".to_v", inF: channels, outF: inner),
            toOut: LinearLayer(store, p + ".to_out.0", inF: inner, outF: channels),
            channels: channels, heads: heads, rescale: rescale)
    }

    /// From explicit layers: q, k, v [B·L, heads·headDim] with head h in columns h·headDim ..< (h+1)·headDim.
    init(
        norm: GroupNormLayer?, toQ: LinearLayer, toK: LinearLayer, toV: LinearLayer, toOut: LinearLayer,
        channels: Int, heads: Int, rescale: Float
    ) {
        self.norm = norm; self.toQ = toQ; self.toK = toK; self.toV = toV; self.toOut = toOut
        self.channels = channels; self.heads = heads; self.headDim = toQ.outF / heads; self.rescale = rescale
    }

    var inner: Int { heads * headDim }
    var scale: Float { 1 / Float(headDim).squareRoot() }

    func outputGeometry(_ g: Geometry) -> Geometry { g }

    func flops(_ g: Geometry) -> Int {
        let n = g.batch * g.spatial, L = g.spatial
        return 3 * toQ.flops(n) + toOut.flops(n) + 2 * (2 * g.batch * heads * L * L * headDim)
    }

    func tapeCount(_ g: Geometry) -> Int {
        2 * g.batch * (norm?.groups ?? 0) + 3 * g.batch * g.spatial * inner + g.batch * heads * g.spatial * g.spatial + 96
    }

    func forward(_ ws: Workspace, _ g: Geometry, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let B = g.batch, L = g.spatial, C = channels, n = B * L
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        self.g = g; self.x = x
        var normed = x
        if let norm {
            let mean = ws.keep(B * norm.groups), rstd = ws.keep(B * norm.groups)
            self.mean = mean; self.rstd = rstd
            let t = ws.temp.alloc(B * C * L)
            norm.forward(B, L, x: x, out: t, mean: mean, rstd: rstd)
            normed = UnsafePointer(t)
        }
        let tokens = ws.temp.alloc(n * C)
        Transpose.channelsToTokens(batch: B, channels: C, length: L, x: normed, out: tokens)
        let q = ws.keep(n * inner), k = ws.keep(n * inner), v = ws.keep(n * inner)
        let probs = ws.keep(Attention.probsCount(batch: B, length: L, heads: heads))
        self.q = q; self.k = k; self.v = v; self.probs = probs
        toQ.forward(n, x: tokens, out: q)
        toK.forward(n, x: tokens, out: k)
        toV.forward(n, x: tokens, out: v)
        let attn = ws.temp.alloc(n * inner)
        Attention.forward(
            batch: B, length: L, heads: heads, headDim: headDim, scale: scale, q: q, k: k, v: v,
            out: attn, probs: probs)
        toOut.forward(n, x: attn, out: tokens)
        Transpose.tokensToChannels(batch: B, channels: C, length: L, x: tokens, out: out)
        addScaled(B * C * L, out, x, rescale, out)
    }

    func backward(_ ws: Workspace, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let B = g.batch, L = g.spatial, C = channels, n = B * L, count = B * C * L
        let m = ws.temp.mark; defer { ws.temp.release(to: m) }
        // residual path: dx = dOut / rescale
        var i = 0
        if rescale == 1 { dx.update(from: dOut, count: count) } else { while i < count { dx[i] = dOut[i] / rescale; i &+= 1 } }
        let gTok = ws.temp.alloc(n * C)
        Transpose.channelsToTokens(batch: B, channels: C, length: L, x: dx, out: gTok)
        let dAttn = ws.temp.alloc(n * inner)
        toOut.backward(n, dOut: gTok, dx: dAttn)
        let dq = ws.temp.alloc(n * inner), dk = ws.temp.alloc(n * inner), dv = ws.temp.alloc(n * inner)
        let scratch = ws.temp.alloc(Attention.scratchCount(batch: B, length: L, heads: heads, headDim: headDim))
        Attention.backwardInput(
            batch: B, length: L, heads: heads, headDim: headDim, scale: scale, q: q!, k: k!, v: v!,
            probs: probs!, dOut: dAttn, dq: dq, dk: dk, dv: dv, scratch: scratch)
        let dTok = gTok, tmp = ws.temp.alloc(n * C)
        toQ.backward(n, dOut: dq, dx: dTok)
        toK.backward(n, dOut: dk, dx: tmp)
        Vec.axpy(n * C, 1, tmp, dTok)
        toV.backward(n, dOut: dv, dx: tmp)
        Vec.axpy(n * C, 1, tmp, dTok)
        let dNormed = ws.temp.alloc(count)
        Transpose.tokensToChannels(batch: B, channels: C, length: L, x: dTok, out: dNormed)
        if let norm { norm.backward(B, L, x: x!, mean: mean!, rstd: rstd!, dOut: dNormed, dx: dNormed) }
        Vec.axpy(count, 1, dNormed, dx)
    }
}
