// Where model parameters come from. The model asks for tensors by their checkpoint name and shape only, so any
// container (safetensors today, GGUF F16/Q8_0 later) plugs in by conforming to `WeightSource`.

import DMiloFormats

/// Metadata of one stored tensor.
public struct WeightInfo: Sendable, Equatable {
    /// Checkpoint name (diffusers state-dict key).
    public var name: String
    /// Dimensions, outermost first (PyTorch order).
    public var shape: [Int]
    /// Storage type as the container names it ("F32", "F16", "BF16", "Q8_0", ...).
    public var dtype: String
    /// Bytes the tensor occupies in the container.
    public var byteCount: Int
    public init(name: String, shape: [Int], dtype: String, byteCount: Int) {
        self.name = name; self.shape = shape; self.dtype = dtype; self.byteCount = byteCount
    }
    public var count: Int { shape.reduce(1, *) }
}

/// A read-only tensor container the model can be built from.
///
/// `loadF32` must be callable repeatedly and cheaply on a memory-mapped container: that is what lets a model keep
/// F16/BF16/Q8_0 weights compressed and dequantise one layer at a time into scratch (see `WeightResidency`).
public protocol WeightSource: AnyObject {
    /// The file (or folder) the weights come from, for error messages.
    var sourcePath: String { get }
    /// All tensor names.
    var weightNames: [String] { get }
    /// Metadata of `name`, nil when absent.
    func weightInfo(_ name: String) -> WeightInfo?
    /// Writes tensor `name` as float32 into `out` (count must equal the tensor's element count).
    func loadF32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws
    /// Hint: tensor `name` has been copied and its container pages may leave memory.
    func dropCachedPages(_ name: String)
}

extension SafetensorsFile: WeightSource {
    public var sourcePath: String { path }
    public func dropCachedPages(_ name: String) { dropPages(name) }
    public var weightNames: [String] { names }
    public func weightInfo(_ name: String) -> WeightInfo? {
        guard let t = tensors[name] else { return nil }
        return WeightInfo(name: name, shape: t.shape, dtype: t.dtype.rawValue, byteCount: t.byteCount)
    }
}

/// A `WeightSource` view that renames tensors (e.g. legacy diffusers attention names query/key/value/proj_attn ->
/// to_q/to_k/to_v/to_out.0), so the model sees only canonical names.
public final class RenamedWeightSource: WeightSource {
    public let base: any WeightSource
    /// canonical name -> name in `base`
    private let map: [String: String]
    public let weightNames: [String]

    /// `rename` maps a stored name to its canonical name (identity for names it does not change).
    public init(_ base: any WeightSource, rename: (String) -> String) throws {
        self.base = base
        var m: [String: String] = [:]
        for n in base.weightNames {
            let c = rename(n)
            if let prev = m[c] {
                throw FormatError(file: base.sourcePath, field: n, "names the same parameter as \"\(prev)\" (\(c))")
            }
            m[c] = n
        }
        map = m
        weightNames = m.keys.sorted()
    }

    public var sourcePath: String { base.sourcePath }
    public func weightInfo(_ name: String) -> WeightInfo? {
        guard let s = map[name], var i = base.weightInfo(s) else { return nil }
        i.name = name
        return i
    }
    public func loadF32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let s = map[name] else { throw FormatError(file: sourcePath, field: name, "no such tensor") }
        try base.loadF32(s, into: out)
    }
    public func dropCachedPages(_ name: String) { if let s = map[name] { base.dropCachedPages(s) } }

    /// diffusers' `_convert_deprecated_attention_blocks` renaming, applied to names inside `.attentions.N.`.
    public static func diffusersAttentionName(_ name: String) -> String {
        guard name.contains(".attentions.") else { return name }
        for (old, new) in [(".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."), (".proj_attn.", ".to_out.0.")]
        where name.contains(old) {
            return name.replacingOccurrences(of: old, with: new)
        }
        return name
    }
}
