// diffusers UNet2DModel config.json, parsed strictly: every key we know is checked for a value we implement,
// unknown keys are errors (typos must not silently change the architecture), keys starting with "_" are ignored.

import DMiloFormats
import Foundation

/// Architecture of a diffusers `UNet2DModel` (the subset dmilo implements).
public struct UNetConfig: Sendable, Equatable {
    public enum BlockType: String, Sendable {
        case DownBlock2D, AttnDownBlock2D, UpBlock2D, AttnUpBlock2D
        public var hasAttention: Bool { self == .AttnDownBlock2D || self == .AttnUpBlock2D }
    }
    public enum TimeEmbedding: String, Sendable { case positional, fourier }
    public enum TimeScaleShift: String, Sendable { case `default`, scale_shift }

    public var sampleSize: Int = 32
    public var inChannels: Int = 3
    public var outChannels: Int = 3
    public var centerInputSample = false
    public var timeEmbeddingType: TimeEmbedding = .positional
    /// Width of the time MLP; nil = 4 × blockOutChannels[0].
    public var timeEmbeddingDim: Int? = nil
    public var freqShift: Float = 0
    public var flipSinToCos = true
    public var downBlockTypes: [BlockType] = [.DownBlock2D, .AttnDownBlock2D, .AttnDownBlock2D, .AttnDownBlock2D]
    public var upBlockTypes: [BlockType] = [.AttnUpBlock2D, .AttnUpBlock2D, .AttnUpBlock2D, .UpBlock2D]
    public var blockOutChannels: [Int] = [224, 448, 672, 896]
    public var layersPerBlock: Int = 2
    public var midBlockScaleFactor: Float = 1
    /// false when config.json has "mid_block_type": null.
    public var hasMidBlock = true
    public var downsamplePadding: Int = 1
    /// Channels per attention head; nil = one head spanning all channels.
    public var attentionHeadDim: Int? = 8
    public var normNumGroups: Int = 32
    /// Groups of the mid-block attention norm; nil = diffusers' rule (norm_num_groups for "default", none otherwise).
    public var attnNormNumGroups: Int? = nil
    public var normEps: Float = 1e-5
    public var resnetTimeScaleShift: TimeScaleShift = .default
    public var addAttention = true

    public init() {}

    /// The time-embedding MLP width.
    public var timeEmbedDim: Int { timeEmbeddingDim ?? blockOutChannels[0] * 4 }
    /// Groups of the mid-block attention GroupNorm, nil = no norm (diffusers UNetMidBlock2D).
    public var midAttentionGroups: Int? { attnNormNumGroups ?? (resnetTimeScaleShift == .default ? normNumGroups : nil) }

    /// Parses config.json bytes; `file` names the source in errors.
    public static func parse(_ data: Data, file: String) throws -> UNetConfig {
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data) } catch {
            throw FormatError(file: file, "is not valid JSON (\(error.localizedDescription))")
        }
        guard let d = any as? [String: Any] else { throw FormatError(file: file, "must be a JSON object") }
        var c = UNetConfig()
        let r = ConfigReader(d: d, file: file)
        for key in d.keys.sorted() where !key.hasPrefix("_") {
            switch key {
            case "sample_size": c.sampleSize = try r.int(key, min: 1, max: ConfigReader.maxImageSize)
            case "in_channels": c.inChannels = try r.int(key, min: 1)
            case "out_channels": c.outChannels = try r.int(key, min: 1)
            case "center_input_sample": c.centerInputSample = try r.bool(key)
            case "time_embedding_type": c.timeEmbeddingType = try r.enumValue(key)
            case "time_embedding_dim": c.timeEmbeddingDim = try r.isNull(key) ? nil : r.int(key, min: 1)
            case "freq_shift": c.freqShift = try r.float(key)
            case "flip_sin_to_cos": c.flipSinToCos = try r.bool(key)
            case "down_block_types": c.downBlockTypes = try r.enumList(key)
            case "up_block_types": c.upBlockTypes = try r.enumList(key)
            case "block_out_channels": c.blockOutChannels = try r.intList(key)
            case "layers_per_block": c.layersPerBlock = try r.int(key, min: 1, max: 64)
            case "mid_block_scale_factor": c.midBlockScaleFactor = try r.float(key)
            case "mid_block_type":
                if r.isNull(key) { c.hasMidBlock = false } else { try r.expectString(key, "UNetMidBlock2D") }
            case "downsample_padding": c.downsamplePadding = try r.int(key, min: 0, max: 1)
            case "downsample_type": try r.expectString(key, "conv")
            case "upsample_type": try r.expectString(key, "conv")
            case "act_fn": try r.expectString(key, "silu")
            case "attention_head_dim": c.attentionHeadDim = try r.isNull(key) ? nil : r.int(key, min: 1)
            case "norm_num_groups": c.normNumGroups = try r.int(key, min: 1)
            case "attn_norm_num_groups": c.attnNormNumGroups = try r.isNull(key) ? nil : r.int(key, min: 1)
            case "norm_eps": c.normEps = try r.float(key)
            case "resnet_time_scale_shift": c.resnetTimeScaleShift = try r.enumValue(key)
            case "add_attention": c.addAttention = try r.bool(key)
            case "class_embed_type", "num_class_embeds":
                guard r.isNull(key) else {
                    throw FormatError(file: file, field: key, "class conditioning is not supported (must be null)")
                }
            case "dropout", "num_train_timesteps": break  // inference only / informational
            default:
                throw FormatError(file: file, field: key, "unknown UNet2DModel config key")
            }
        }
        try c.validate(file: file)
        return c
    }

    /// Cross-key consistency (lengths, divisibility), with diffusers' own rules.
    public func validate(file: String) throws {
        let n = blockOutChannels.count
        guard n >= 1 else { throw FormatError(file: file, field: "block_out_channels", "must not be empty") }
        let lists = [("down_block_types", downBlockTypes), ("up_block_types", upBlockTypes)]
        for (field, types) in lists where types.count != n {
            throw FormatError(file: file, field: field, "has \(types.count) entries, block_out_channels has \(n)")
        }
        for t in downBlockTypes where t == .UpBlock2D || t == .AttnUpBlock2D {
            throw FormatError(file: file, field: "down_block_types", "\"\(t.rawValue)\" is an up block")
        }
        for t in upBlockTypes where t == .DownBlock2D || t == .AttnDownBlock2D {
            throw FormatError(file: file, field: "up_block_types", "\"\(t.rawValue)\" is a down block")
        }
        for ch in blockOutChannels where ch < 1 || ch % normNumGroups != 0 {
            throw FormatError(file: file, field: "norm_num_groups", "\(normNumGroups) does not divide block width \(ch)")
        }
        if let g = attnNormNumGroups, blockOutChannels[n - 1] % g != 0 {
            throw FormatError(file: file, field: "attn_norm_num_groups", "\(g) does not divide \(blockOutChannels[n - 1])")
        }
        if let hd = attentionHeadDim {
            let levels = Array(zip(downBlockTypes, blockOutChannels)) + zip(upBlockTypes, blockOutChannels.reversed())
            for (t, width) in levels where t.hasAttention && width % hd != 0 {
                throw FormatError(file: file, field: "attention_head_dim", "\(hd) does not divide block width \(width)")
            }
            if hasMidBlock && addAttention && blockOutChannels[n - 1] % hd != 0 {
                throw FormatError(file: file, field: "attention_head_dim", "\(hd) does not divide mid width \(blockOutChannels[n - 1])")
            }
        }
        if timeEmbeddingType == .fourier && timeEmbedDim < 1 {
            throw FormatError(file: file, field: "time_embedding_dim", "must be positive")
        }
        if timeEmbeddingType == .positional && Float(blockOutChannels[0] / 2) == freqShift {
            throw FormatError(file: file, field: "freq_shift", "equals half the embedding width (division by zero)")
        }
    }

    /// Factor by which H and W must be divisible (one halving per down block but the last).
    public var spatialMultiple: Int { 1 << (blockOutChannels.count - 1) }

    /// A one-line description, e.g. for `dmilo inspect`.
    public var summary: String {
        "UNet2DModel \(inChannels)→\(outChannels) ch, \(sampleSize)², blocks \(blockOutChannels), layers/block \(layersPerBlock), "
            + "down [\(downBlockTypes.map(\.rawValue).joined(separator: ", "))], up [\(upBlockTypes.map(\.rawValue).joined(separator: ", "))], "
            + "time \(timeEmbeddingType.rawValue)\(timeEmbeddingType == .positional ? " (flip_sin_to_cos \(flipSinToCos), freq_shift \(freqShift))" : ""), "
            + "head dim \(attentionHeadDim.map(String.init) ?? "all"), groups \(normNumGroups), eps \(normEps), "
            + "time shift \(resnetTimeScaleShift.rawValue)"
    }
}
