// diffusers UNet2DModel on DMiloKernels: forward ε_θ(x, t) and the input VJP (weights frozen).
//
// The network is flattened into a list of ops (stem conv, resnets, attentions, resamplers, skip concatenations,
// output head) in execution order (`OpSequence`, shared with `ADMUNet`): each down-path op that diffusers appends
// to `down_block_res_samples` pushes its output on a skip stack; each up-path resnet is preceded by a concat that
// pops it.
//
// Memory: activations live in the model's `Workspace` arenas, sized on the first call at a batch size and reused
// afterwards (no steady-state allocation except the returned tensors). Only `forwardForVJP` keeps activations; a
// plain `forward` frees every module's internals as soon as the module returns. The VJP keeps the tape until it
// returns: the peak of a VJP is at its start (full tape + the full-resolution head's temporaries), so releasing
// the tape op by op cannot lower it (measured: it raised the total, because backward temporaries then stop sharing
// the forward's temporary arena). Peak ≈ tape + max temporaries + skip gradients + two gradient buffers; the tape
// stores only what each VJP needs (GroupNorm outputs are recomputed, not stored).
// One tape is live per model: a new forward invalidates the previous tape (vjp then throws instead of reading
// overwritten memory).

import DMiloFormats
import DMiloKernels
import Foundation

/// A model-level error (bad input shape, stale tape, unsupported file), with a readable message.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// diffusers `UNet2DModel` with frozen float32 weights.
public final class UNet2DModel: NoisePredictor {
    /// The architecture.
    public let config: UNetConfig
    /// Where the weights came from (file path).
    public let weightsPath: String
    /// Stored dtype of each tensor (from the weight source), for reporting.
    public let tensorDTypes: [String: String]

    private let store: ParameterStore
    private let body: OpSequence
    private let resnets: [ResnetBlock]
    private let timeLinear1: LinearLayer, timeLinear2: LinearLayer
    private let fourierWeight: Parameter?
    private let ws = Workspace()

    private var generation = 0
    private var liveTape: UNetTape?
    private var timestepScratch: [Float] = []

    /// Builds the network for `config` and binds it strictly to `weights` (canonical diffusers names; wrap legacy
    /// checkpoints with `RenamedWeightSource`).
    public init(config: UNetConfig, weights: any WeightSource, residency: WeightResidency = .float32) throws {
        try config.validate(file: weights.sourcePath)
        self.config = config
        weightsPath = weights.sourcePath
        var dtypes: [String: String] = [:]
        for n in weights.weightNames { dtypes[n] = weights.weightInfo(n)?.dtype ?? "?" }
        tensorDTypes = dtypes
        let store = ParameterStore()
        self.store = store
        let c = config, boc = c.blockOutChannels, nb = boc.count, temb = c.timeEmbedDim
        let G = c.normNumGroups, eps = c.normEps, shift = c.resnetTimeScaleShift == .scale_shift

        // time embedding
        let projDim: Int
        if c.timeEmbeddingType == .fourier {
            fourierWeight = store.declare("time_proj.weight", [boc[0]])
            projDim = 2 * boc[0]
        } else {
            fourierWeight = nil
            projDim = boc[0]
        }
        timeLinear1 = LinearLayer(store, "time_embedding.linear_1", inF: projDim, outF: temb)
        timeLinear2 = LinearLayer(store, "time_embedding.linear_2", inF: temb, outF: temb)

        var ops: [Op] = []
        var resnets: [ResnetBlock] = []
        func resnet(_ p: String, _ cin: Int, _ cout: Int, scale: Float = 1) -> ResnetBlock {
            let r = ResnetBlock(store, p, cin: cin, cout: cout, temb: temb, groups: G, eps: eps, scaleShift: shift, outputScale: scale)
            resnets.append(r)
            return r
        }
        ops.append(.step(ConvStep(ConvLayer(store, "conv_in", cin: c.inChannels, cout: boc[0], kernel: 3, padding: 1)), pushesSkip: true))
        var ch = boc[0]
        for (i, type) in c.downBlockTypes.enumerated() {
            let outC = boc[i]
            for j in 0..<c.layersPerBlock {
                let r = resnet("down_blocks.\(i).resnets.\(j)", j == 0 ? ch : outC, outC)
                if type.hasAttention {
                    ops.append(.step(r, pushesSkip: false))
                    ops.append(.step(AttentionBlock(store, "down_blocks.\(i).attentions.\(j)", channels: outC,
                                                    headDim: c.attentionHeadDim ?? outC, groups: G, eps: eps, rescale: 1),
                                     pushesSkip: true))
                } else {
                    ops.append(.step(r, pushesSkip: true))
                }
            }
            ch = outC
            if i != nb - 1 {
                ops.append(.step(Downsample(store, "down_blocks.\(i).downsamplers.0", channels: outC, padding: c.downsamplePadding),
                                 pushesSkip: true))
            }
        }
        if c.hasMidBlock {
            let s = c.midBlockScaleFactor
            ops.append(.step(resnet("mid_block.resnets.0", ch, ch, scale: s), pushesSkip: false))
            if c.addAttention {
                ops.append(.step(AttentionBlock(store, "mid_block.attentions.0", channels: ch, headDim: c.attentionHeadDim ?? ch,
                                                groups: c.midAttentionGroups, eps: eps, rescale: s), pushesSkip: false))
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
                    ops.append(.step(AttentionBlock(store, "up_blocks.\(i).attentions.\(j)", channels: outC,
                                                    headDim: c.attentionHeadDim ?? outC, groups: G, eps: eps, rescale: 1),
                                     pushesSkip: false))
                }
            }
            if i != nb - 1 { ops.append(.step(Upsample(store, "up_blocks.\(i).upsamplers.0", channels: outC), pushesSkip: false)) }
        }
        ops.append(.step(OutputHead(norm: GroupNormLayer(store, "conv_norm_out", channels: boc[0], groups: G, eps: eps),
                                    conv: ConvLayer(store, "conv_out", cin: boc[0], cout: c.outChannels, kernel: 3, padding: 1)),
                         pushesSkip: false))
        body = OpSequence(ops)
        self.resnets = resnets
        let m = c.spatialMultiple
        try body.checkWiring(Geometry(batch: 1, channels: c.inChannels, height: m, width: m)) { ($0 as? ResnetBlock)?.cin }
        try store.load(from: weights, residency: residency)
        self.residency = residency
    }

    /// Recompute knob (activation checkpointing per op). When true, `forwardForVJP` keeps only the output of each
    /// op (resnet, attention, resampler, concat) and the VJP re-runs each op's forward, recording, just before its
    /// backward. Saves every op's internal tape (resnet norm inputs and time projections; attention q, k, v and the
    /// B·heads·L² probabilities, which dominate at high-resolution attention) for about one extra forward pass.
    /// Results are bit-identical. Default false.
    public var recomputeActivations = false

    /// How the weights are held (see `WeightResidency`).
    public private(set) var residency: WeightResidency = .float32

    // MARK: loading

    /// Loads a diffusers folder (config.json + diffusion_pytorch_model.safetensors or model.safetensors), or a
    /// .safetensors file with config.json beside it. Legacy attention names are accepted.
    public static func load(path: String, residency: WeightResidency = .float32) throws -> UNet2DModel {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ModelError("\(path): no such model file or folder")
        }
        let folder: String, weightsFile: String
        if isDir.boolValue {
            folder = path
            let candidates = ["diffusion_pytorch_model.safetensors", "model.safetensors"].map { (path as NSString).appendingPathComponent($0) }
            guard let w = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw ModelError("\(path): folder has neither diffusion_pytorch_model.safetensors nor model.safetensors")
            }
            weightsFile = w
        } else if path.hasSuffix(".safetensors") {
            folder = (path as NSString).deletingLastPathComponent
            weightsFile = path
        } else if path.hasSuffix(".gguf") {
            return try loadGGUF(path: path)
        } else {
            throw ModelError("\(path): not a diffusers model folder or .safetensors file")
        }
        let configPath = (folder.isEmpty ? "." : folder as NSString).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configPath) else { throw ModelError("\(configPath): missing (diffusers config)") }
        let config = try UNetConfig.load(path: configPath)
        let file = try SafetensorsFile(path: weightsFile)
        let source = try RenamedWeightSource(file, rename: RenamedWeightSource.diffusersAttentionName)
        return try UNet2DModel(config: config, weights: source, residency: residency)
    }

    // MARK: NoisePredictor

    public var sampleShape: (channels: Int, height: Int, width: Int) { (config.inChannels, config.sampleSize, config.sampleSize) }
    public var outputChannels: Int { config.outChannels }
    /// Number of float parameters.
    public var parameterCount: Int { store.floatCount }
    /// Arithmetic of the convolution GEMMs (see ComputeSelection.swift).
    public var computePrecision: ComputePrecision { store.compute }
    /// Packs (or, for f32, drops) the low-precision convolution weights.
    public func setComputePrecision(_ p: ComputePrecision) throws { try store.setCompute(p) }
    /// Parameters (name, shape) in declaration order.
    public var parameterShapes: [(name: String, shape: [Int])] { store.params.map { ($0.name, $0.shape) } }

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

    public func vjp(_ tape: any ActivationTape, cotangent: Tensor) throws -> Tensor {
        let t = try UNetTape.claim(tape, model: self, generation: generation, cotangentShape: cotangent.shape)
        defer { liveTape = nil }
        let dx = backward(cotangent, tape: t)
        if let e = ws.weightError { ws.weightError = nil; throw ModelError("\(weightsPath): weights unreadable during the VJP: \(e)") }
        return dx
    }

    public func vjpMemoryBytes(batch: Int) -> Int {
        let s = config.sampleSize
        return body.vjpMemoryBytes(Geometry(batch: batch, channels: config.inChannels, height: s, width: s),
                                   recompute: recomputeActivations, extraActs: 0)
    }

    // MARK: passes

    /// Forward FLOPs (conv, linear and attention matmuls; ×2 multiply-adds) for input (B, C, H, W).
    public func forwardFlops(batch: Int, height: Int? = nil, width: Int? = nil) -> Int {
        let g = Geometry(batch: batch, channels: config.inChannels, height: height ?? config.sampleSize, width: width ?? config.sampleSize)
        return timeLinear1.flops(batch) + timeLinear2.flops(batch) + body.flops(g)
    }

    private func validateInput(_ x: Tensor) throws -> Geometry {
        guard x.shape.count == 4 else { throw ModelError("input must have shape (B, C, H, W), got \(x.shape)") }
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        guard b >= 1 else { throw ModelError("input batch is empty") }
        guard c == config.inChannels else {
            throw ModelError("input has \(c) channels, the model takes \(config.inChannels)")
        }
        let m = config.spatialMultiple
        guard h >= m, w >= m, h % m == 0, w % m == 0 else {
            throw ModelError("input size \(h)×\(w) must be a positive multiple of \(m) (one halving per down block)")
        }
        return Geometry(batch: b, channels: c, height: h, width: w)
    }

    private func run(_ x: Tensor, timestep: Float, record: Bool) throws -> Tensor {
        let g = try validateInput(x)
        guard timestep.isFinite else { throw ModelError("timestep \(timestep) is not finite") }
        if config.timeEmbeddingType == .fourier && !(timestep > 0) {
            throw ModelError("Fourier time embedding takes log(t): timestep must be > 0, got \(timestep)")
        }
        let B = g.batch
        generation += 1
        liveTape = nil
        ws.acts.reset(); ws.temp.reset()
        ws.recording = record
        defer { ws.recording = false }

        // time embedding (not differentiated): emb = linear_2(silu(linear_1(proj(t)))); resnets use silu(emb)
        timestepScratch.removeAll(keepingCapacity: true)
        for _ in 0..<B { timestepScratch.append(timestep) }
        let d0 = config.blockOutChannels[0], T = config.timeEmbedDim
        let proj = ws.acts.alloc(B * timeLinear1.inF)
        if let fw = fourierWeight {
            // UNet2DModel builds GaussianFourierProjection(flip_sin_to_cos=False) regardless of the config flag.
            TimestepEmbedding.fourier(timesteps: timestepScratch, weight: fw.ptr, half: d0, flipSinToCos: false, out: proj)
        } else {
            TimestepEmbedding.sinusoidal(timesteps: timestepScratch, dim: d0, flipSinToCos: config.flipSinToCos,
                                         downscaleFreqShift: config.freqShift, out: proj)
        }
        let hidden = ws.acts.alloc(B * T), emb = ws.acts.alloc(B * T)
        timeLinear1.forward(B, x: proj, out: hidden)
        SiLU.forward(count: B * T, x: hidden, out: hidden)
        timeLinear2.forward(B, x: hidden, out: emb)
        SiLU.forward(count: B * T, x: emb, out: emb)
        for r in resnets { r.tembAct = UnsafePointer(emb) }

        var cur = UnsafePointer(x.data)
        if config.centerInputSample {
            let c = ws.acts.alloc(g.count)
            for i in 0..<g.count { c[i] = 2 * x.data[i] - 1 }
            cur = UnsafePointer(c)
        }
        let result = Tensor(shape: [B, config.outChannels, g.height, g.width], zeroed: false)
        body.forward(ws, g, x: cur, result: result.data)
        if config.timeEmbeddingType == .fourier { result.scale(by: 1 / timestep) }
        if let e = ws.weightError { ws.weightError = nil; throw ModelError("\(weightsPath): weights unreadable during the pass: \(e)") }
        return result
    }

    private func backward(_ cotangent: Tensor, tape: UNetTape) -> Tensor {
        let g = body.backward(ws, cotangent: cotangent.data, count: cotangent.count, recompute: tape.recompute)
        let dx = Tensor(shape: tape.inputShape, zeroed: false)
        dx.data.update(from: g, count: dx.count)
        // diffusers divides the output by t (σ here) for Fourier embeddings, so the gradient is divided too.
        if config.timeEmbeddingType == .fourier { dx.scale(by: 1 / tape.timestep) }
        if config.centerInputSample { dx.scale(by: 2) }
        return dx
    }

    /// Bytes held by the model's workspace arenas (activations, temporaries, gradients) after the last pass.
    public var workspaceBytes: Int { ws.reservedBytes }
    /// Bytes of resident float32 parameters (non-resident ones live in the mapped file).
    public var parameterBytes: Int { 4 * store.residentFloatCount }
}
