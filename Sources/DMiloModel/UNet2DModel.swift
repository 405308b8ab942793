// diffusers UNet2DModel: its wiring over the shared blocks (the runtime is `UNetRuntime`) as an `OpSequence`, where
// each output diffusers appends to `down_block_res_samples` is pushed as a skip.

/// diffusers `UNet2DModel` with frozen float32 weights.
public final class UNet2DModel: UNetRuntime<UNetConfig> {
    /// Builds the network for `config` and binds it strictly to `weights` (canonical diffusers names; wrap legacy
    /// checkpoints with `RenamedWeightSource`).
    public convenience init(config: UNetConfig, weights: any WeightSource, residency: WeightResidency = .float32) throws {
        try self.init(config: config, weights: weights, residency: residency, wiring: UNet2DModel.wiring)
    }

    /// Loads a diffusers folder (config.json + diffusion_pytorch_model.safetensors or model.safetensors), a
    /// .safetensors file with config.json beside it, or a dmilo GGUF file. Legacy attention names are accepted.
    public static func load(path: String, residency: WeightResidency = .float32) throws -> UNet2DModel {
        guard let m = try ModelFile(path: path).instantiate(residency: residency) as? UNet2DModel else {
            throw ModelError("\(path): holds a guided-diffusion (ADM) model, not a diffusers UNet2DModel")
        }
        return m
    }

    static func wiring(_ c: UNetConfig, _ store: ParameterStore) -> UNetWiring {
        let boc = c.blockOutChannels, nb = boc.count, temb = c.timeEmbedDim
        let G = c.normNumGroups, eps = c.normEps, shift = c.resnetTimeScaleShift == .scale_shift
        let projection: TimeProjection, projDim: Int
        if c.timeEmbeddingType == .fourier {
            projection = .fourier(weight: store.declare("time_proj.weight", [boc[0]]), half: boc[0])
            projDim = 2 * boc[0]
        } else {
            projection = .sinusoidal(dim: boc[0], flipSinToCos: c.flipSinToCos, downscaleFreqShift: c.freqShift)
            projDim = boc[0]
        }
        let timeLinear1 = LinearLayer(store, "time_embedding.linear_1", inF: projDim, outF: temb)
        let timeLinear2 = LinearLayer(store, "time_embedding.linear_2", inF: temb, outF: temb)

        var ops: [Op] = []
        var resnets: [ResnetBlock] = []
        func resnet(_ p: String, _ cin: Int, _ cout: Int, scale: Float = 1) -> ResnetBlock {
            let r = ResnetBlock(store, .diffusers(p), cin: cin, cout: cout, temb: temb, groups: G, eps: eps, scaleShift: shift, outputScale: scale)
            resnets.append(r)
            return r
        }
        func attention(_ p: String, _ ch: Int, groups: Int?, rescale: Float = 1) -> AttentionBlock {
            AttentionBlock(
                store, p, channels: ch, headDim: c.attentionHeadDim ?? ch, groups: groups, eps: eps,
                rescale: rescale)
        }
        ops.append(.step(ConvStep(ConvLayer(store, "conv_in", cin: c.inChannels, cout: boc[0], kernel: 3, padding: 1)), pushesSkip: true))
        var ch = boc[0]
        for (i, type) in c.downBlockTypes.enumerated() {
            let outC = boc[i]
            for j in 0..<c.layersPerBlock {
                let r = resnet("down_blocks.\(i).resnets.\(j)", j == 0 ? ch : outC, outC)
                if type.hasAttention {
                    ops.append(.step(r, pushesSkip: false))
                    ops.append(.step(attention("down_blocks.\(i).attentions.\(j)", outC, groups: G), pushesSkip: true))
                } else {
                    ops.append(.step(r, pushesSkip: true))
                }
            }
            ch = outC
            if i != nb - 1 {
                let down = ConvStep(
                    downsample: store, "down_blocks.\(i).downsamplers.0", channels: outC,
                    padding: c.downsamplePadding)
                ops.append(.step(down, pushesSkip: true))
            }
        }
        if c.hasMidBlock {
            let s = c.midBlockScaleFactor
            ops.append(.step(resnet("mid_block.resnets.0", ch, ch, scale: s), pushesSkip: false))
            if c.addAttention {
                let a = attention("mid_block.attentions.0", ch, groups: c.midAttentionGroups, rescale: s)
                ops.append(.step(a, pushesSkip: false))
            }
            ops.append(.step(resnet("mid_block.resnets.1", ch, ch, scale: s), pushesSkip: false))
        }
        let rev = Array(boc.reversed())
        var outC = rev[0]
        for (i, type) in c.upBlockTypes.enumerated() {
            let prevOut = outC
            outC = rev[i]
            let inC = rev[min(i + 1, nb - 1)]
            for j in 0...c.layersPerBlock {
                let skipC = j == c.layersPerBlock ? inC : outC
                let resIn = j == 0 ? prevOut : outC
                ops.append(.concatSkip)
                ops.append(.step(resnet("up_blocks.\(i).resnets.\(j)", resIn + skipC, outC), pushesSkip: false))
                if type.hasAttention {
                    ops.append(.step(attention("up_blocks.\(i).attentions.\(j)", outC, groups: G), pushesSkip: false))
                }
            }
            if i != nb - 1 { ops.append(.step(Upsample(store, "up_blocks.\(i).upsamplers.0", channels: outC), pushesSkip: false)) }
        }
        ops.append(
            .step(
                OutputHead(
                    norm: GroupNormLayer(store, "conv_norm_out", channels: boc[0], groups: G, eps: eps),
                    conv: ConvLayer(store, "conv_out", cin: boc[0], cout: c.outChannels, kernel: 3, padding: 1)),
                pushesSkip: false))
        var w = UNetWiring(
            timeLinear1: timeLinear1, timeLinear2: timeLinear2, projection: projection, ops: ops,
            resnets: resnets, inChannels: c.inChannels, outChannels: c.outChannels,
            sampleSize: c.sampleSize, spatialMultiple: c.spatialMultiple)
        w.centerInput = c.centerInputSample
        return w
    }
}
