import DMiloFormats

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
            // else (wrong count, negative or overflowing dims) the strict loader reports the stored 2-D shape
            if s.count == dims.count, checkedElementCount(s) == t.count { shape = s }
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
