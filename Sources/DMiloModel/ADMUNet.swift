// guided-diffusion `UNetModel` (unet.py; "ADM"), unconditional, on DMiloKernels: the raw output (B, out, H, W) at
// an integer timestep and its input VJP (weights frozen). Parameter names are the checkpoint's state-dict keys.
//
//   emb = time_embed.2(silu(time_embed.0(timestep_embedding(t, num_channels))))   ([cos, sin], max period 10⁴,
//         t the raw train step, docs/algorithms.md §1.4)
//   input_blocks: conv_in, then per level num_res_blocks × [ResBlock (+ AttentionBlock at attention levels)] and,
//                 between levels, a ResBlock(down) (resblock_updown) or a stride-2 conv `op`; every block's output
//                 is pushed on the skip list `hs`
//   middle_block: ResBlock, AttentionBlock, ResBlock
//   output_blocks: per level (deepest first) num_res_blocks + 1 × [cat(h, hs.pop()), ResBlock (+ AttentionBlock)],
//                 the last of each level but the top one ending with a ResBlock(up) or nearest-2× + conv `conv`
//   out: GroupNorm32, SiLU, conv  →  2·in channels with learn_sigma (ε first; see `vjp` for the cotangent)
// The blocks are the diffusers ones (`ResnetBlock` under `ResnetNames.adm`, `AttentionBlock` fed by ADM's fused
// qkv, see ADMBlocks.swift), so this file is only the wiring; it runs on `UNetRuntime`.

/// guided-diffusion UNet with frozen float32 weights.
public final class ADMUNet: UNetRuntime<ADMConfig> {
    /// Builds the network for `config` and binds it strictly to `weights` (guided-diffusion state-dict names).
    public convenience init(config: ADMConfig, weights: any WeightSource, residency: WeightResidency = .float32) throws {
        try self.init(config: config, weights: weights, residency: residency, wiring: ADMUNet.wiring)
    }

    static func wiring(_ c: ADMConfig, _ store: ParameterStore) -> UNetWiring {
        let nc = c.numChannels, temb = c.timeEmbedDim, G = ADMConfig.groups, eps = ADMConfig.eps
        let attnDS = c.attentionDownsampleFactors
        // timestep_embedding: [cos(t·f), sin(t·f)], f_i = exp(−ln(10⁴)·i/half), t the raw train step
        let timeLinear1 = LinearLayer(store, "time_embed.0", inF: nc, outF: temb)
        let timeLinear2 = LinearLayer(store, "time_embed.2", inF: temb, outF: temb)

        var ops: [Op] = []
        var resnets: [ResnetBlock] = []
        var qkvs: [ADMQKV] = []
        func resBlock(_ p: String, _ cin: Int, _ cout: Int, _ resample: ResnetResample = .none) -> ResnetBlock {
            let r = ResnetBlock(
                store, .adm(p), cin: cin, cout: cout, temb: temb, groups: G, eps: eps,
                scaleShift: c.useScaleShiftNorm, outputScale: 1, resample: resample)
            resnets.append(r)
            return r
        }
        func attention(_ p: String, _ ch: Int, upsample: Bool) -> AttentionBlock {
            let (a, qkv) = admAttention(
                store, p, channels: ch, heads: c.heads(channels: ch, upsample: upsample),
                legacyOrder: !c.useNewAttentionOrder)
            qkvs.append(qkv)
            return a
        }

        var ch = c.channelMult[0] * nc
        let inputCh = ch
        ops.append(
            .step(
                ConvStep(ConvLayer(store, "input_blocks.0.0", cin: c.inChannels, cout: ch, kernel: 3, padding: 1)),
                pushesSkip: true))
        var skipChannels = [ch]
        var ds = 1, k = 1
        for (level, mult) in c.channelMult.enumerated() {
            for _ in 0..<c.numResBlocks {
                let r = resBlock("input_blocks.\(k).0", ch, mult * nc)
                ch = mult * nc
                if attnDS.contains(ds) {
                    ops.append(.step(r, pushesSkip: false))
                    ops.append(.step(attention("input_blocks.\(k).1", ch, upsample: false), pushesSkip: true))
                } else {
                    ops.append(.step(r, pushesSkip: true))
                }
                skipChannels.append(ch)
                k += 1
            }
            if level != c.channelMult.count - 1 {
                let down: any Step =
                    c.resblockUpdown
                    ? resBlock("input_blocks.\(k).0", ch, ch, .down)
                    : ConvStep(ConvLayer(store, "input_blocks.\(k).0.op", cin: ch, cout: ch, kernel: 3, stride: 2, padding: 1))
                ops.append(.step(down, pushesSkip: true))
                skipChannels.append(ch)
                ds *= 2; k += 1
            }
        }
        ops.append(.step(resBlock("middle_block.0", ch, ch), pushesSkip: false))
        ops.append(.step(attention("middle_block.1", ch, upsample: false), pushesSkip: false))
        ops.append(.step(resBlock("middle_block.2", ch, ch), pushesSkip: false))
        k = 0
        for (level, mult) in c.channelMult.enumerated().reversed() {
            for i in 0...c.numResBlocks {
                let skip = skipChannels.removeLast()
                ops.append(.concatSkip)
                ops.append(.step(resBlock("output_blocks.\(k).0", ch + skip, nc * mult), pushesSkip: false))
                ch = nc * mult
                var j = 1
                if attnDS.contains(ds) {
                    ops.append(.step(attention("output_blocks.\(k).1", ch, upsample: true), pushesSkip: false))
                    j = 2
                }
                if level > 0 && i == c.numResBlocks {
                    let up: any Step =
                        c.resblockUpdown
                        ? resBlock("output_blocks.\(k).\(j)", ch, ch, .up)
                        : Upsample(store, "output_blocks.\(k).\(j)", channels: ch)
                    ops.append(.step(up, pushesSkip: false))
                    ds /= 2
                }
                k += 1
            }
        }
        ops.append(
            .step(
                OutputHead(
                    norm: GroupNormLayer(store, "out.0", channels: ch, groups: G, eps: eps),
                    conv: ConvLayer(store, "out.2", cin: inputCh, cout: c.outChannels, kernel: 3, padding: 1)),
                pushesSkip: false))
        var w = UNetWiring(
            timeLinear1: timeLinear1, timeLinear2: timeLinear2,
            projection: .sinusoidal(dim: nc, flipSinToCos: true, downscaleFreqShift: 0), ops: ops,
            resnets: resnets, inChannels: c.inChannels, outChannels: c.outChannels,
            sampleSize: c.imageSize, spatialMultiple: c.spatialMultiple)
        w.acceptsEpsilonCotangent = c.learnSigma
        w.legacyQKV = qkvs
        return w
    }
}
