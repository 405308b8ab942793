import DMiloFormats
import Foundation

/// A GGUF file (written by `dmilo-quantize`) as a weight source: names are canonical diffusers names, shapes come
/// back in PyTorch order, F16/Q8_0 tensors are dequantised on each `loadF32` (so the model can keep them compressed).
extension GGUFFile: WeightSource {
    public var sourcePath: String { path }
    public var weightNames: [String] { tensorNames }
    public func weightInfo(_ name: String) -> WeightInfo? {
        guard let t = tensors[name] else { return nil }
        var shape = t.shape
        if case .array(let dims)? = metadata[GGUFKeys.shapePrefix + name] {
            let s = dims.compactMap(\.intValue)
            if s.count == dims.count, s.reduce(1, *) == t.count { shape = s }   // else the strict loader reports the mismatch
        }
        return WeightInfo(name: name, shape: shape, dtype: t.type.name, byteCount: t.byteCount)
    }
    public func dropCachedPages(_ name: String) { dropPages(name) }
}

/// Metadata keys dmilo writes into its GGUF files (everything needed to run without any other file).
public enum GGUFKeys {
    public static let architecture = "general.architecture"
    public static let architectureValue = "dmilo.unet2d"
    public static let configJSON = "dmilo.config_json"
    public static let trainSteps = "dmilo.schedule.num_train_timesteps"
    public static let betaStart = "dmilo.schedule.beta_start"
    public static let betaEnd = "dmilo.schedule.beta_end"
    public static let betaSchedule = "dmilo.schedule.beta_schedule"
    public static let predictionType = "dmilo.schedule.prediction_type"
    public static let imageShape = "dmilo.image_shape"
    public static let sourceSHA256 = "dmilo.source_sha256"
    public static let toolVersion = "dmilo.tool_version"
    /// `dmilo.shape.NAME`: PyTorch shape of a tensor stored flattened to 2-D (Q8_0 convolution weights).
    public static let shapePrefix = "dmilo.shape."
}

extension UNet2DModel {
    /// Loads a dmilo GGUF file: config from `dmilo.config_json`; F16/Q8_0 convolution weights stay compressed in the
    /// mapping and are dequantised layer by layer.
    public static func loadGGUF(path: String, residency: WeightResidency = .compressedConvolutions) throws -> UNet2DModel {
        let file = try GGUFFile(path: path)
        guard file.metadata[GGUFKeys.architecture]?.stringValue == GGUFKeys.architectureValue else {
            throw ModelError("\(path): general.architecture is \(file.metadata[GGUFKeys.architecture]?.stringValue ?? "missing"), expected \(GGUFKeys.architectureValue)")
        }
        guard let json = file.metadata[GGUFKeys.configJSON]?.stringValue else {
            throw ModelError("\(path): metadata \(GGUFKeys.configJSON) is missing")
        }
        let config = try UNetConfig.parse(Data(json.utf8), file: "\(path) (\(GGUFKeys.configJSON))")
        return try UNet2DModel(config: config, weights: file, residency: residency)
    }

    /// The noise schedule stored in a dmilo GGUF file (the default DDPM schedule when absent).
    public static func schedule(ofGGUF path: String) throws -> NoiseSchedule {
        let md = try GGUFFile(path: path).metadata
        return NoiseSchedule(trainSteps: md[GGUFKeys.trainSteps]?.intValue ?? 1000,
                             betaStart: md[GGUFKeys.betaStart]?.doubleValue ?? 1e-4,
                             betaEnd: md[GGUFKeys.betaEnd]?.doubleValue ?? 0.02,
                             betaSchedule: md[GGUFKeys.betaSchedule]?.stringValue ?? "linear")
    }
}
