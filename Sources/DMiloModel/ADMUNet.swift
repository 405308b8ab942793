// guided-diffusion `UNetModel` (unet.py; "ADM"), unconditional, on DMiloKernels: the raw output (B, out, H, W) at
// an integer timestep and its input VJP (weights frozen). Parameter names are the checkpoint's state-dict keys.
//
//   emb = time_embed.2(silu(time_embed.0(timestep_embedding(t, num_channels))))   ([cos, sin], max period 10⁴,
//         t the raw train step, algorithms.md §1.4)
//   input_blocks: conv_in, then per level num_res_blocks × [ResBlock (+ AttentionBlock at attention levels)] and,
//                 between levels, a ResBlock(down) (resblock_updown) or a stride-2 conv `op`; every block's output
//                 is pushed on the skip list `hs`
//   middle_block: ResBlock, AttentionBlock, ResBlock
//   output_blocks: per level (deepest first) num_res_blocks + 1 × [cat(h, hs.pop()), ResBlock (+ AttentionBlock)],
//                 the last of each level but the top one ending with a ResBlock(up) or nearest-2× + conv `conv`
//   out: GroupNorm32, SiLU, conv  →  2·in channels with learn_sigma (ε first; see `vjp` for the cotangent)
// The blocks are the diffusers ones (`ResnetBlock` under `ResnetNames.adm`, `AttentionBlock` fed by ADM's fused
// qkv, see ADMBlocks.swift), so this file is only the wiring; the op list runs on `OpSequence`.

import DMiloFormats
import DMiloKernels
import Foundation

/// guided-diffusion UNet with frozen float32 weights.
public final class ADMUNet: NoisePredictor {
    public let config: ADMConfig
    /// Where the weights came from (file path).
    public let weightsPath: String
    /// Stored dtype of each tensor (from the weight source), for reporting.
    public let tensorDTypes: [String: String]

    private let store: ParameterStore
    private let body: OpSequence
    private let resnets: [ResnetBlock]
    private let timeLinear1: LinearLayer, timeLinear2: LinearLayer
    private let ws = Workspace()
    private var generation = 0
    private var liveTape: UNetTape?
    private var timestepScratch: [Float] = []

    /// Recompute knob, as `UNet2DModel.recomputeActivations` (bit-identical results, smaller tape).
    public var recomputeActivations = false
    public private(set) var residency: WeightResidency

    /// Builds the network for `config` and binds it strictly to `weights` (guided-diffusion state-dict names).
    public init(config: ADMConfig, weights: any WeightSource, residency: WeightResidency = .float32) throws {
        try config.validate(file: weights.sourcePath)
        self.config = config
        weightsPath = weights.sourcePath
        var dtypes: [String: String] = [:]
        for n in weights.weightNames { dtypes[n] = weights.weightInfo(n)?.dtype ?? "?" }
        tensorDTypes = dtypes
        let store = ParameterStore()
        self.store = store
        let c = config, nc = c.numChannels, temb = c.timeEmbedDim, G = ADMConfig.groups, eps = ADMConfig.eps
        let attnDS = c.attentionDownsampleFactors
        timeLinear1 = LinearLayer(store, "time_embed.0", inF: nc, outF: temb)
        timeLinear2 = LinearLayer(store, "time_embed.2", inF: temb, outF: temb)

        var ops: [Op] = []
        var resnets: [ResnetBlock] = []
        var qkvs: [ADMQKV] = []
        func resBlock(_ p: String, _ cin: Int, _ cout: Int, _ resample: ResnetResample = .none) -> ResnetBlock {
            let r = ResnetBlock(store, .adm(p), cin: cin, cout: cout, temb: temb, groups: G, eps: eps,
                                scaleShift: c.useScaleShiftNorm, outputScale: 1, resample: resample)
            resnets.append(r)
            return r
        }
        func attention(_ p: String, _ ch: Int, upsample: Bool) -> AttentionBlock {
            let (a, qkv) = admAttention(store, p, channels: ch, heads: c.heads(channels: ch, upsample: upsample),
                                        legacyOrder: !c.useNewAttentionOrder)
            qkvs.append(qkv)
            return a
        }

        var ch = c.channelMult[0] * nc
        let inputCh = ch
        ops.append(.step(ConvStep(ConvLayer(store, "input_blocks.0.0", cin: c.inChannels, cout: ch, kernel: 3, padding: 1)),
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
                let down: any Step = c.resblockUpdown
                    ? resBlock("input_blocks.\(k).0", ch, ch, .down)
                    : Downsample(conv: ConvLayer(store, "input_blocks.\(k).0.op", cin: ch, cout: ch, kernel: 3, stride: 2, padding: 1))
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
                    let up: any Step = c.resblockUpdown
                        ? resBlock("output_blocks.\(k).\(j)", ch, ch, .up)
                        : Upsample(store, "output_blocks.\(k).\(j)", channels: ch)
                    ops.append(.step(up, pushesSkip: false))
                    ds /= 2
                }
                k += 1
            }
        }
        ops.append(.step(OutputHead(norm: GroupNormLayer(store, "out.0", channels: ch, groups: G, eps: eps),
                                    conv: ConvLayer(store, "out.2", cin: inputCh, cout: c.outChannels, kernel: 3, padding: 1)),
                         pushesSkip: false))
        body = OpSequence(ops)
        self.resnets = resnets
        let m = c.spatialMultiple
        try body.checkWiring(Geometry(batch: 1, channels: c.inChannels, height: m, width: m)) { ($0 as? ResnetBlock)?.cin }
        try store.load(from: weights, residency: residency)
        for q in qkvs { q.canonicalise() }
        self.residency = residency
    }

    /// Loads a folder written by Tools/convert_adm.py (config.json with `_class_name` "ADMUNet" + model.safetensors).
    public static func load(folder: String, weightsFile: String, residency: WeightResidency = .float32) throws -> ADMUNet {
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: configPath)) } catch {
            throw ModelError("\(configPath): cannot read (\(error.localizedDescription))")
        }
        let config = try ADMConfig.parse(data, file: configPath)
        return try ADMUNet(config: config, weights: try SafetensorsFile(path: weightsFile), residency: residency)
    }

    // MARK: NoisePredictor

    public var sampleShape: (channels: Int, height: Int, width: Int) { (config.inChannels, config.imageSize, config.imageSize) }
    public var outputChannels: Int { config.outChannels }
    public var parameterCount: Int { store.floatCount }
    /// Arithmetic of the convolution GEMMs (see ComputeSelection.swift).
    public var computePrecision: ComputePrecision { store.compute }
    /// Packs (or, for f32, drops) the low-precision convolution weights.
    public func setComputePrecision(_ p: ComputePrecision) throws { try store.setCompute(p) }

    public func forward(_ x: Tensor, timestep: Float) throws -> Tensor {
        try run(x, timestep: timestep, record: false)
    }

    public func forwardForVJP(_ x: Tensor, timestep: Float) throws -> (output: Tensor, tape: any ActivationTape) {
        let y = try run(x, timestep: timestep, record: !recomputeActivations)
        let tape = UNetTape(model: self, generation: generation, inputShape: x.shape, outputShape: y.shape,
                            timestep: timestep, bytes: 4 * ws.acts.used, recompute: recomputeActivations)
        liveTape = tape
        return (y, tape)
    }

    /// dL/dx for L = Σ cotangent ⊙ output. With learn_sigma the output has 2·C channels (ε, then the variance
    /// interpolation) while the solvers differentiate ε only: a cotangent with just the C ε channels is accepted
    /// and means zeros for the variance channels (they then contribute nothing to dL/dx).
    public func vjp(_ tape: any ActivationTape, cotangent: Tensor) throws -> Tensor {
        var cot = cotangent
        let C = config.inChannels
        if config.learnSigma, cotangent.shape.count == 4, cotangent.shape[1] == C {
            let (B, HW) = (cotangent.shape[0], cotangent.shape[2] * cotangent.shape[3])
            cot = Tensor(shape: [B, 2 * C, cotangent.shape[2], cotangent.shape[3]])  // zeroed: variance channels
            for b in 0..<B { (cot.data + b * 2 * C * HW).update(from: cotangent.data + b * C * HW, count: C * HW) }
        }
        let t = try UNetTape.claim(tape, model: self, generation: generation, cotangentShape: cot.shape)
        defer { liveTape = nil }
        let g = body.backward(ws, cotangent: cot.data, count: cot.count, recompute: t.recompute)
        let dx = Tensor(shape: t.inputShape, zeroed: false)
        dx.data.update(from: g, count: dx.count)
        if let e = ws.weightError { ws.weightError = nil; throw ModelError("\(weightsPath): weights unreadable during the VJP: \(e)") }
        return dx
    }

    public func vjpMemoryBytes(batch: Int) -> Int {
        let s = config.imageSize
        return body.vjpMemoryBytes(Geometry(batch: batch, channels: config.inChannels, height: s, width: s),
                                   recompute: recomputeActivations, extraActs: 3 * batch * config.timeEmbedDim)
    }

    /// Forward FLOPs (conv, linear and attention matmuls; ×2 multiply-adds) for input (B, C, H, W).
    public func forwardFlops(batch: Int, height: Int?, width: Int?) -> Int {
        let g = Geometry(batch: batch, channels: config.inChannels, height: height ?? config.imageSize, width: width ?? config.imageSize)
        return timeLinear1.flops(batch) + timeLinear2.flops(batch) + body.flops(g)
    }

    /// Bytes held by the model's workspace arenas after the last pass.
    public var workspaceBytes: Int { ws.reservedBytes }
    /// Bytes of resident float32 parameters (non-resident ones live in the mapped file).
    public var parameterBytes: Int { 4 * store.residentFloatCount }

    // MARK: passes

    private func validateInput(_ x: Tensor) throws -> Geometry {
        guard x.shape.count == 4 else { throw ModelError("input must have shape (B, C, H, W), got \(x.shape)") }
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        guard b >= 1 else { throw ModelError("input batch is empty") }
        guard c == config.inChannels else { throw ModelError("input has \(c) channels, the model takes \(config.inChannels)") }
        let m = config.spatialMultiple
        guard h >= m, w >= m, h % m == 0, w % m == 0 else {
            throw ModelError("input size \(h)×\(w) must be a positive multiple of \(m) (one halving per level)")
        }
        return Geometry(batch: b, channels: c, height: h, width: w)
    }

    private func run(_ x: Tensor, timestep: Float, record: Bool) throws -> Tensor {
        let g = try validateInput(x)
        guard timestep.isFinite else { throw ModelError("timestep \(timestep) is not finite") }
        let B = g.batch
        generation += 1
        liveTape = nil
        ws.acts.reset(); ws.temp.reset()
        ws.recording = record
        defer { ws.recording = false }

        // guided-diffusion timestep_embedding: [cos(t·f), sin(t·f)], f_i = exp(−ln(10⁴)·i/half) (not differentiated)
        timestepScratch.removeAll(keepingCapacity: true)
        for _ in 0..<B { timestepScratch.append(timestep) }
        let nc = config.numChannels, T = config.timeEmbedDim
        let proj = ws.acts.alloc(B * nc), hidden = ws.acts.alloc(B * T), emb = ws.acts.alloc(B * T)
        TimestepEmbedding.sinusoidal(timesteps: timestepScratch, dim: nc, flipSinToCos: true, downscaleFreqShift: 0, out: proj)
        timeLinear1.forward(B, x: proj, out: hidden)
        SiLU.forward(count: B * T, x: hidden, out: hidden)
        timeLinear2.forward(B, x: hidden, out: emb)
        SiLU.forward(count: B * T, x: emb, out: emb)  // every ResBlock's emb_layers starts with SiLU: apply it once
        for r in resnets { r.tembAct = UnsafePointer(emb) }

        let result = Tensor(shape: [B, config.outChannels, g.height, g.width], zeroed: false)
        body.forward(ws, g, x: UnsafePointer(x.data), result: result.data)
        if let e = ws.weightError { ws.weightError = nil; throw ModelError("\(weightsPath): weights unreadable during the pass: \(e)") }
        return result
    }
}
