// The one UNet runtime: parameters, workspace, tape and time embedding, shared by every architecture. An
// architecture (`UNet2DModel`, `ADMUNet`) is only its wiring: a function from a parameter store to a `UNetWiring`
// (time-embedding layers, the flat op list of its body, its input/output conventions), as stable-diffusion.cpp's
// `UnetModelBlock` is only wiring over shared blocks.
//
// Memory: activations live in the runtime's `Workspace` arenas, sized on the first call at a batch size and reused
// afterwards (no steady-state allocation except the returned tensors). Only `forwardForVJP` keeps activations; a
// plain `forward` frees every module's internals as soon as the module returns. The VJP keeps the tape until it
// returns: the peak of a VJP is at its start (full tape + the full-resolution head's temporaries), so releasing
// the tape op by op cannot lower it (measured: it raised the total, because backward temporaries then stop sharing
// the forward's temporary arena). Peak ≈ tape + max temporaries + skip gradients + two gradient buffers; the tape
// stores only what each VJP needs (GroupNorm outputs are recomputed, not stored).
// One tape is live per instance: a new forward invalidates the previous tape (vjp then throws instead of reading
// overwritten memory). A replica re-runs the wiring over the same loaded parameter store: it shares every weight
// and owns only its blocks' bookkeeping and its workspace.

import DMiloKernels

/// A model-level error (bad input shape, stale tape, unsupported file), with a readable message.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How the timestep becomes the input of the first time-embedding layer.
enum TimeProjection {
    /// [sin, cos] (or [cos, sin]) of t·f_i over `dim` features.
    case sinusoidal(dim: Int, flipSinToCos: Bool, downscaleFreqShift: Float)
    /// Gaussian Fourier features of log σ (diffusers builds them with flip_sin_to_cos = false whatever the config
    /// says); the network output is then divided by σ, so the VJP is too.
    case fourier(weight: Parameter, half: Int)
}

/// One architecture's wiring over the shared blocks, as built on a parameter store.
struct UNetWiring {
    var timeLinear1: LinearLayer, timeLinear2: LinearLayer
    var projection: TimeProjection
    var ops: [Op]
    /// Every resnet of `ops` (they all read the same activated time embedding).
    var resnets: [ResnetBlock]
    var inChannels: Int, outChannels: Int, sampleSize: Int
    /// Input height and width must be multiples of this (one halving per level).
    var spatialMultiple: Int
    /// diffusers `center_input_sample`: the network sees 2x − 1.
    var centerInput = false
    /// The output has twice the input channels (ε, then the variance interpolation) and a cotangent with only the
    /// ε channels is accepted (guided-diffusion learn_sigma; the solvers differentiate ε only).
    var acceptsEpsilonCotangent = false
    /// Fused legacy-order qkv projections to permute once after loading (never again for a replica).
    var legacyQKV: [ADMQKV] = []
}

/// What the runtime needs from an architecture's config.
public protocol UNetArchitecture: Sendable {
    /// Cross-key consistency; errors name `file` and the key.
    func validate(file: String) throws
    /// One line naming the architecture and its hyperparameters.
    var summary: String { get }
    /// A timestep in the model's own units for benchmarks and calibration (a train step, or σ for Fourier models).
    var typicalTimestep: Float { get }
}

/// The runtime every UNet architecture subclasses: forward ε_θ(x, t), its input VJP (weights frozen), FLOP and
/// memory counts. A subclass only names its config type and its wiring function.
public class UNetRuntime<Config: UNetArchitecture>: DiffusionUNet {
    public let config: Config
    public let weightsPath: String
    public let tensorDTypes: [String: String]
    public let residency: WeightResidency

    /// Recompute knob (activation checkpointing per op). When true, `forwardForVJP` keeps only the output of each
    /// op (resnet, attention, resampler, concat) and the VJP re-runs each op's forward, recording, just before its
    /// backward. Saves every op's internal tape (resnet norm inputs and time projections; attention q, k, v and the
    /// B·heads·L² probabilities, which dominate at high-resolution attention) for about one extra forward pass.
    /// Results are bit-identical. Default false.
    public var recomputeActivations = false

    let store: ParameterStore
    private let build: (ParameterStore) -> UNetWiring
    private let wiring: UNetWiring
    private let body: OpSequence
    private let ws = Workspace()
    private var generation = 0
    private var timestepScratch: [Float] = []

    /// Builds the wiring for `config`, checks it geometrically and binds it strictly to `weights` (every missing,
    /// unexpected and wrong-shape tensor reported at once).
    init(
        config: Config, weights: any WeightSource, residency: WeightResidency,
        wiring wire: @escaping (Config, ParameterStore) -> UNetWiring
    ) throws {
        try config.validate(file: weights.sourcePath)
        self.config = config
        weightsPath = weights.sourcePath
        tensorDTypes = Dictionary(weights.weightNames.map { ($0, weights.weightInfo($0)?.dtype ?? "?") }) { $1 }
        self.residency = residency
        store = ParameterStore()
        build = { wire(config, $0) }
        self.wiring = build(store)
        body = OpSequence(wiring.ops)
        let m = wiring.spatialMultiple
        try body.checkWiring(Geometry(batch: 1, channels: wiring.inChannels, height: m, width: m)) { ($0 as? ResnetBlock)?.cin }
        try store.load(from: weights, residency: residency)
        for q in wiring.legacyQKV { q.canonicalise() }
    }

    /// Another instance over the same loaded weights, with its own blocks and workspace.
    required init(sharing other: UNetRuntime<Config>) {
        config = other.config
        weightsPath = other.weightsPath
        tensorDTypes = other.tensorDTypes
        residency = other.residency
        recomputeActivations = other.recomputeActivations
        store = other.store
        build = other.build
        wiring = build(store)  // `declare` hands back the already-loaded parameters
        body = OpSequence(wiring.ops)
    }

    public func replica() -> Self { Self(sharing: self) }

    public var architectureSummary: String { config.summary }
    public var typicalTimestep: Float { config.typicalTimestep }

    // MARK: NoisePredictor

    public var sampleShape: (channels: Int, height: Int, width: Int) { (wiring.inChannels, wiring.sampleSize, wiring.sampleSize) }
    public var outputChannels: Int { wiring.outChannels }
    public var parameterCount: Int { store.floatCount }
    public var workspaceBytes: Int { ws.reservedBytes }
    public var parameterBytes: Int { 4 * store.residentFloatCount }
    /// Arithmetic of the convolution GEMMs (see ComputeSelection.swift); a property of the shared store, so every
    /// replica runs the same packed weights.
    public var computePrecision: ComputePrecision { store.compute }
    /// Packs (or, for f32, drops) the low-precision convolution weights of the store this instance shares.
    public func setComputePrecision(_ p: ComputePrecision) throws { try store.setCompute(p) }

    public func forward(_ x: Tensor, timestep: Float) throws -> Tensor {
        try run(x, timestep: timestep, record: false)
    }

    public func forwardForVJP(_ x: Tensor, timestep: Float) throws -> (output: Tensor, tape: any ActivationTape) {
        let y = try run(x, timestep: timestep, record: !recomputeActivations)
        return (
            y,
            UNetTape(
                model: self, generation: generation, inputShape: x.shape, outputShape: y.shape,
                timestep: timestep, bytes: 4 * ws.acts.used, recompute: recomputeActivations)
        )
    }

    /// dL/dx for L = Σ cotangent ⊙ output. With `acceptsEpsilonCotangent` a cotangent with only the ε channels
    /// means zeros for the variance channels (they then contribute nothing to dL/dx).
    public func vjp(_ tape: any ActivationTape, cotangent: Tensor) throws -> Tensor {
        let cot = epsilonPadded(cotangent)
        let t = try UNetTape.claim(tape, model: self, generation: generation, cotangentShape: cot.shape)
        let g = body.backward(ws, cotangent: cot.data, count: cot.count, recompute: t.recompute)
        let dx = Tensor(shape: t.inputShape, zeroed: false)
        dx.data.update(from: g, count: dx.count)
        if case .fourier = wiring.projection { dx.scale(by: 1 / t.timestep) }
        if wiring.centerInput { dx.scale(by: 2) }
        try throwWeightError("the VJP")
        return dx
    }

    public func vjpMemoryBytes(batch: Int) -> Int {
        let s = wiring.sampleSize, g = Geometry(batch: batch, channels: wiring.inChannels, height: s, width: s)
        let timeActs = batch * (wiring.timeLinear1.inF + 2 * wiring.timeLinear2.outF)
        return body.vjpMemoryBytes(g, recompute: recomputeActivations, extraActs: timeActs + (wiring.centerInput ? g.count : 0))
    }

    /// Forward FLOPs (conv, linear and attention matmuls; ×2 multiply-adds) at the sample size.
    public func forwardFlops(batch: Int) -> Int {
        let s = wiring.sampleSize, g = Geometry(batch: batch, channels: wiring.inChannels, height: s, width: s)
        return wiring.timeLinear1.flops(batch) + wiring.timeLinear2.flops(batch) + body.flops(g)
    }

    // MARK: passes

    private func validateInput(_ x: Tensor, timestep: Float) throws -> Geometry {
        guard x.shape.count == 4 else { throw ModelError("input must have shape (B, C, H, W), got \(x.shape)") }
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        guard b >= 1 else { throw ModelError("input batch is empty") }
        guard c == wiring.inChannels else { throw ModelError("input has \(c) channels, the model takes \(wiring.inChannels)") }
        let m = wiring.spatialMultiple
        guard h >= m, w >= m, h % m == 0, w % m == 0 else {
            throw ModelError("input size \(h)×\(w) must be a positive multiple of \(m) (one halving per level)")
        }
        guard timestep.isFinite else { throw ModelError("timestep \(timestep) is not finite") }
        if case .fourier = wiring.projection, !(timestep > 0) {
            throw ModelError("Fourier time embedding takes log(t): timestep must be > 0, got \(timestep)")
        }
        return Geometry(batch: b, channels: c, height: h, width: w)
    }

    private func run(_ x: Tensor, timestep: Float, record: Bool) throws -> Tensor {
        let g = try validateInput(x, timestep: timestep)
        generation += 1
        ws.acts.reset(); ws.temp.reset()
        ws.recording = record
        defer { ws.recording = false }
        embedTime(timestep, batch: g.batch)
        var cur = UnsafePointer(x.data)
        if wiring.centerInput {
            let c = ws.acts.alloc(g.count)
            for i in 0..<g.count { c[i] = 2 * x.data[i] - 1 }
            cur = UnsafePointer(c)
        }
        let result = Tensor(shape: [g.batch, wiring.outChannels, g.height, g.width], zeroed: false)
        body.forward(ws, g, x: cur, result: result.data)
        if case .fourier = wiring.projection { result.scale(by: 1 / timestep) }
        try throwWeightError("the pass")
        return result
    }

    /// emb = silu(linear_2(silu(linear_1(proj(t))))), not differentiated; every resnet's time projection starts
    /// with SiLU, so it is applied once here.
    private func embedTime(_ timestep: Float, batch B: Int) {
        timestepScratch.removeAll(keepingCapacity: true)
        for _ in 0..<B { timestepScratch.append(timestep) }
        let l1 = wiring.timeLinear1, l2 = wiring.timeLinear2, T = l2.outF
        let proj = ws.acts.alloc(B * l1.inF), hidden = ws.acts.alloc(B * T), emb = ws.acts.alloc(B * T)
        switch wiring.projection {
        case .sinusoidal(let dim, let flip, let shift):
            TimestepEmbedding.sinusoidal(timesteps: timestepScratch, dim: dim, flipSinToCos: flip, downscaleFreqShift: shift, out: proj)
        case .fourier(let weight, let half):
            TimestepEmbedding.fourier(timesteps: timestepScratch, weight: weight.ptr, half: half, flipSinToCos: false, out: proj)
        }
        l1.forward(B, x: proj, out: hidden)
        SiLU.forward(count: B * T, x: hidden, out: hidden)
        l2.forward(B, x: hidden, out: emb)
        SiLU.forward(count: B * T, x: emb, out: emb)
        for r in wiring.resnets { r.tembAct = UnsafePointer(emb) }
    }

    private func epsilonPadded(_ cotangent: Tensor) -> Tensor {
        let C = wiring.inChannels, s = cotangent.shape
        guard wiring.acceptsEpsilonCotangent, s.count == 4, s[1] == C, wiring.outChannels == 2 * C else { return cotangent }
        let (B, HW) = (s[0], s[2] * s[3])
        let cot = Tensor(shape: [B, 2 * C, s[2], s[3]])  // zeroed: variance channels
        for b in 0..<B { (cot.data + b * 2 * C * HW).update(from: cotangent.data + b * C * HW, count: C * HW) }
        return cot
    }

    private func throwWeightError(_ during: String) throws {
        guard let e = ws.weightError else { return }
        ws.weightError = nil
        throw ModelError("\(weightsPath): weights unreadable during \(during): \(e)")
    }
}

/// The activations of one `forwardForVJP`, owned by the model's workspace. One tape is live per instance: a new
/// forward invalidates the previous tape (vjp then throws instead of reading overwritten memory).
final class UNetTape: ActivationTape {
    weak var model: AnyObject?
    let generation: Int
    let inputShape: [Int], outputShape: [Int]
    let timestep: Float
    let bytes: Int
    /// Made with `recomputeActivations`: only op outputs are stored.
    let recompute: Bool
    var consumed = false
    init(
        model: AnyObject, generation: Int, inputShape: [Int], outputShape: [Int], timestep: Float, bytes: Int,
        recompute: Bool
    ) {
        self.model = model; self.generation = generation; self.inputShape = inputShape; self.outputShape = outputShape
        self.timestep = timestep; self.bytes = bytes; self.recompute = recompute
    }

    /// Checks that `tape` is a live, unused tape of `model` at generation `generation`, and marks it consumed.
    static func claim(_ tape: any ActivationTape, model: AnyObject, generation: Int, cotangentShape: [Int]) throws -> UNetTape {
        guard let t = tape as? UNetTape, t.model === model else { throw ModelError("vjp: tape was not made by this model") }
        guard t.generation == generation, !t.consumed else {
            throw ModelError("vjp: tape is stale (another forward ran since, or it was already used)")
        }
        guard cotangentShape == t.outputShape else {
            throw ModelError("vjp: cotangent shape \(cotangentShape) does not match the output shape \(t.outputShape)")
        }
        t.consumed = true
        return t
    }
}
