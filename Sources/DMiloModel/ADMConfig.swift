// guided-diffusion ("ADM", Dhariwal & Nichol 2021) UNet config, as written by Tools/convert_adm.py: the keyword
// arguments of guided-diffusion's `create_model` (same names, same meaning) plus the noise schedule the checkpoint
// was trained with. Parsed strictly like UNetConfig: unknown keys are errors, keys starting with "_" are ignored
// except `_class_name`, which must be "ADMUNet" (it is how a loader tells this config from a diffusers one).

import DMiloFormats
import Foundation

/// Architecture of a guided-diffusion `UNetModel` (unconditional; dropout off; float32 compute).
public struct ADMConfig: Sendable, Equatable {
    /// The `_class_name` value that marks an ADM config.json.
    public static let className = "ADMUNet"

    public var imageSize = 256
    public var inChannels = 3
    public var numChannels = 128
    public var numResBlocks = 1
    /// Width multiplier per level (guided-diffusion derives it from image_size when empty; the converter writes it).
    public var channelMult: [Int] = [1, 1, 2, 2, 4, 4]
    /// Feature-map resolutions (pixels) with self-attention, e.g. [16] = the level at image_size / 16.
    public var attentionResolutions: [Int] = [16]
    public var numHeads = 4
    /// Channels per head; -1 = use `numHeads` heads.
    public var numHeadChannels = 64
    /// Heads of the output (up-path) attention blocks when numHeadChannels == -1; -1 = numHeads.
    public var numHeadsUpsample = -1
    public var useScaleShiftNorm = true
    /// Resampling by ResBlocks (nearest / avg-pool inside the block) instead of conv Upsample / Downsample.
    public var resblockUpdown = true
    /// Output 2·in_channels channels (ε and the variance interpolation v); solvers use the first in_channels.
    public var learnSigma = true
    /// QKVAttention (split q, k, v first, then heads) instead of QKVAttentionLegacy (heads first).
    public var useNewAttentionOrder = false
    /// The training noise schedule (converter defaults: linear β 1e-4 → 0.02 over 1000 steps, ε prediction).
    public var numTrainTimesteps = 1000
    public var betaStart = 1e-4
    public var betaEnd = 0.02
    public var betaSchedule = "linear"

    /// GroupNorm32: 32 groups, PyTorch default eps.
    public static let groups = 32
    public static let eps: Float = 1e-5

    public init() {}

    public var outChannels: Int { learnSigma ? 2 * inChannels : inChannels }
    public var timeEmbedDim: Int { 4 * numChannels }
    /// Downsampling factors `ds` (1, 2, 4, …) at which attention runs: image_size / resolution (create_model).
    public var attentionDownsampleFactors: Set<Int> { Set(attentionResolutions.map { imageSize / $0 }) }
    /// Factor by which H and W must be divisible (one halving per level but the last).
    public var spatialMultiple: Int { 1 << (channelMult.count - 1) }

    /// Heads of an attention block over `channels` (guided-diffusion AttentionBlock); `upsample` for output blocks.
    public func heads(channels: Int, upsample: Bool) -> Int {
        if numHeadChannels != -1 { return channels / numHeadChannels }
        return upsample && numHeadsUpsample != -1 ? numHeadsUpsample : numHeads
    }

    /// Parses config.json bytes; `file` names the source in errors.
    public static func parse(_ data: Data, file: String) throws -> ADMConfig {
        guard let d = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FormatError(file: file, "is not a JSON object")
        }
        guard d["_class_name"] as? String == className else {
            throw FormatError(file: file, field: "_class_name", "must be \"\(className)\" for a guided-diffusion config")
        }
        var c = ADMConfig()
        let r = ConfigReader(d: d, file: file)
        var declaredOut: Int?
        for key in d.keys.sorted() where !key.hasPrefix("_") {
            switch key {
            case "image_size": c.imageSize = try r.int(key, min: 1, max: ConfigReader.maxImageSize)
            case "in_channels": c.inChannels = try r.int(key, min: 1)
            case "num_channels": c.numChannels = try r.int(key, min: 1)
            case "num_res_blocks": c.numResBlocks = try r.int(key, min: 0, max: 64)
            case "channel_mult": c.channelMult = try r.intList(key)
            case "attention_resolutions": c.attentionResolutions = try r.intList(key)
            case "num_heads": c.numHeads = try r.int(key, min: 1)
            case "num_head_channels": c.numHeadChannels = try r.int(key, min: -1)
            case "num_heads_upsample": c.numHeadsUpsample = try r.int(key, min: -1)
            case "use_scale_shift_norm": c.useScaleShiftNorm = try r.bool(key)
            case "resblock_updown": c.resblockUpdown = try r.bool(key)
            case "learn_sigma": c.learnSigma = try r.bool(key)
            case "use_new_attention_order": c.useNewAttentionOrder = try r.bool(key)
            case "class_cond":
                guard try !r.bool(key) else { throw FormatError(file: file, field: key, "class-conditional models are not supported") }
            case "out_channels": declaredOut = try r.int(key, min: 1)  // informational; checked below
            case "num_train_timesteps": c.numTrainTimesteps = try r.int(key, min: 2, max: NoiseSchedule.maxTrainSteps)
            case "beta_start": c.betaStart = try r.double(key)
            case "beta_end": c.betaEnd = try r.double(key)
            case "beta_schedule": try r.expectString(key, "linear")
            case "prediction_type": try r.expectString(key, "epsilon")
            case "use_fp16", "use_checkpoint", "dropout":
                break  // compute precision, training memory and training regularisation: no effect on our float32 inference
            default:
                throw FormatError(file: file, field: key, "unknown ADM config key")
            }
        }
        if let o = declaredOut, o != c.outChannels {
            throw FormatError(file: file, field: "out_channels", "is \(o) but learn_sigma and in_channels give \(c.outChannels)")
        }
        try c.validate(file: file)
        return c
    }

    /// Cross-key consistency with guided-diffusion's own constraints.
    public func validate(file: String) throws {
        guard !channelMult.isEmpty else { throw FormatError(file: file, field: "channel_mult", "must not be empty") }
        for m in channelMult where m * numChannels > ConfigReader.maxValue {
            throw FormatError(file: file, field: "channel_mult", "width \(m) × \(numChannels) exceeds \(ConfigReader.maxValue)")
        }
        for (k, v) in [("num_head_channels", numHeadChannels), ("num_heads_upsample", numHeadsUpsample)] where v == 0 {
            throw FormatError(file: file, field: k, "must be -1 (unused) or positive, got 0")
        }
        for m in channelMult where (m * numChannels) % Self.groups != 0 {
            throw FormatError(file: file, field: "num_channels", "width \(m * numChannels) is not divisible by GroupNorm32's 32 groups")
        }
        for r in attentionResolutions where r > imageSize || imageSize % r != 0 {
            throw FormatError(file: file, field: "attention_resolutions", "\(r) does not divide image_size \(imageSize)")
        }
        guard imageSize % spatialMultiple == 0 else {
            throw FormatError(file: file, field: "image_size", "\(imageSize) is not divisible by \(spatialMultiple) (one halving per level)")
        }
        guard betaStart > 0, betaEnd > betaStart, betaEnd < 1 else {
            throw FormatError(file: file, field: "beta_end", "schedule β \(betaStart)…\(betaEnd) is not increasing within (0, 1)")
        }
        // every width that carries attention (levels at an attention factor, and the middle block) splits into heads
        let ds = attentionDownsampleFactors
        var widths: Set<Int> = [channelMult.last! * numChannels]
        for (level, m) in channelMult.enumerated() where ds.contains(1 << level) { widths.insert(m * numChannels) }
        for w in widths {
            if numHeadChannels != -1 {
                guard w % numHeadChannels == 0 else {
                    throw FormatError(file: file, field: "num_head_channels", "\(numHeadChannels) does not divide width \(w)")
                }
            } else {
                for h in [numHeads, numHeadsUpsample == -1 ? numHeads : numHeadsUpsample] where w % h != 0 {
                    throw FormatError(file: file, field: "num_heads", "\(h) heads do not divide width \(w)")
                }
            }
        }
    }

    /// A one-line description, e.g. for `dmilo inspect`.
    public var summary: String {
        "ADM UNet (guided-diffusion) \(inChannels)→\(outChannels) ch\(learnSigma ? " (learn_sigma: ε = first \(inChannels))" : ""), "
            + "\(imageSize)², \(numChannels) channels × \(channelMult), \(numResBlocks) res blocks/level, "
            + "attention at \(attentionResolutions.map(String.init).joined(separator: ",")) px, "
            + (numHeadChannels == -1 ? "\(numHeads) heads" : "\(numHeadChannels) ch/head")
            + ", \(useNewAttentionOrder ? "new" : "legacy") qkv order, scale-shift \(useScaleShiftNorm), resblock up/down \(resblockUpdown)"
    }
}
