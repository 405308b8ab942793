import DMiloFormats

/// Which tensors get which storage type (the policy of stable-diffusion.cpp's model loader): biases, normalisation
/// weights, the time embedding, `conv_in` and `conv_out` stay F32 — they are tiny and the first/last layers and the
/// embedding are where errors hurt most. Everything else takes the requested type; Q8_0 needs GGUF's innermost
/// dimension (the product of all but the first PyTorch dimension) to be a multiple of 32, otherwise F16.
public struct QuantizationPolicy: Sendable {
    public var requested: GGMLType
    /// Extra name substrings to keep F32 (`--keep`).
    public var keep: [String]
    /// Quantise even the tensors the default policy keeps (`--policy all`).
    public var all: Bool

    public init(requested: GGMLType, keep: [String] = [], all: Bool = false) {
        self.requested = requested; self.keep = keep; self.all = all
    }

    public static let keptByDefault = [".bias", "norm", "time_embedding.", "time_proj.", "conv_in.", "conv_out."]
    /// The same roles under guided-diffusion (ADM) names: time MLP, stem conv (`input_blocks.0.0`), output head
    /// (`out.0` GroupNorm, `out.2` conv). Prefixes, because `out.` is also a substring of `proj_out.`.
    public static let keptPrefixesByDefault = ["time_embed.", "input_blocks.0.0.", "out."]

    public func type(for name: String, shape: [Int]) -> GGMLType {
        if keep.contains(where: { name.contains($0) }) { return .f32 }
        if !all
            && (Self.keptByDefault.contains(where: { name.contains($0) })
                || Self.keptPrefixesByDefault.contains(where: { name.hasPrefix($0) }) || shape.count < 2)
        {
            return .f32
        }
        switch requested {
        case .f32: return .f32
        case .f16: return .f16
        case .q8_0:
            let inner = shape.dropFirst().reduce(1, *)
            return inner % Q8_0.blockSize == 0 ? .q8_0 : .f16
        }
    }
}
