// Strict parameter binding: modules declare the tensors they need (name + shape) while the model is built; the
// store then checks the declared set against the weight source and reports every missing, unexpected and
// wrong-shape tensor at once (one error listing names beats fixing them one run at a time).

import DMiloKernels

/// One float32 model parameter (a view into the store's single allocation).
public final class Parameter {
    public let name: String
    /// PyTorch shape.
    public let shape: [Int]
    public let count: Int
    /// The values (valid once the store has loaded).
    public internal(set) var data: UnsafeMutablePointer<Float>

    init(name: String, shape: [Int], placeholder: UnsafeMutablePointer<Float>) {
        self.name = name; self.shape = shape; self.count = shape.reduce(1, *); self.data = placeholder
    }
    /// Read-only pointer for kernels (resident parameters only).
    public var ptr: UnsafePointer<Float> { UnsafePointer(data) }
    /// False when the parameter stays in its compressed container and is dequantised into scratch on each use.
    public internal(set) var isResident = true
    /// The container of a non-resident parameter.
    var source: (any WeightSource)?
    /// Low-precision copy for the int8 / bf16 compute modes (nil in f32 mode), built by `ParameterStore.setCompute`.
    public internal(set) var packed: PackedConvWeights?
    /// Set by the layer that owns a GEMM weight: how to pack it (nil: the parameter always stays f32).
    var packer: ((ComputePrecision, UnsafePointer<Float>) -> PackedConvWeights)?

    /// float32 values for one use: the resident copy, or a fresh dequantisation into `ws.temp` (valid until the
    /// caller releases its temp mark). A failing re-read (the file changed under the mapping) is recorded in `ws`
    /// and yields zeros; the model turns it into an error at the end of the pass.
    func values(_ ws: Workspace) -> UnsafePointer<Float> {
        if isResident { return ptr }
        let p = ws.temp.alloc(count)
        do { try source!.loadF32(name, into: UnsafeMutableBufferPointer(start: p, count: count)) } catch {
            p.initialize(repeating: 0, count: count)
            if ws.weightError == nil { ws.weightError = "\(error)" }
        }
        return UnsafePointer(p)
    }

    /// A float32 copy of a non-resident parameter, read from its container.
    func floatCopy() throws -> [Float] {
        var v = [Float](repeating: 0, count: count)
        try v.withUnsafeMutableBufferPointer { try source!.loadF32(name, into: $0) }
        return v
    }
}

/// How a model holds its weights in memory.
public enum WeightResidency: Sendable {
    /// Every parameter converted to float32 once at load (fastest; 4 bytes per parameter).
    case float32
    /// Convolution weights stored as F16/BF16 (or any non-F32 type of the source) stay in the memory-mapped
    /// container and are dequantised layer by layer into scratch on each use: about half the resident memory for
    /// F16 checkpoints, at the cost of one conversion pass over those weights per forward and per VJP.
    case compressedConvolutions
}

/// Missing / unexpected / wrong-shape tensors, all listed.
public struct WeightMismatchError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let missing: [String]
    public let unexpected: [String]
    /// (name, expected shape, stored shape)
    public let wrongShape: [(String, [Int], [Int])]

    public var description: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing tensors: \(missing.joined(separator: ", "))") }
        if !unexpected.isEmpty { parts.append("unexpected tensors: \(unexpected.joined(separator: ", "))") }
        if !wrongShape.isEmpty {
            parts.append("wrong shapes: " + wrongShape.map { "\($0.0) is \($0.2), model needs \($0.1)" }.joined(separator: "; "))
        }
        return "\(file): weights do not match the config: " + parts.joined(separator: "; ")
    }
}

/// Collects parameter declarations, validates them against a `WeightSource` and loads them as float32.
final class ParameterStore {
    private(set) var params: [Parameter] = []
    private var byName: [String: Parameter] = [:]
    private var storage: UnsafeMutablePointer<Float>?
    nonisolated(unsafe) private static let placeholder = UnsafeMutablePointer<Float>.allocate(capacity: 1)  // never written

    /// Declares parameter `name` with `shape`.
    func declare(_ name: String, _ shape: [Int]) -> Parameter {
        if let p = byName[name] { return p }
        let p = Parameter(name: name, shape: shape, placeholder: Self.placeholder)
        params.append(p)
        byName[name] = p
        return p
    }

    var floatCount: Int { params.reduce(0) { $0 + $1.count } }
    /// Floats held as resident float32.
    var residentFloatCount: Int { params.reduce(0) { $0 + ($1.isResident ? $1.count : 0) } }

    /// Precision of the packed GEMM weights (f32: none packed).
    private(set) var compute: ComputePrecision = .f32

    /// Packs every weight that has a packer for `p` (or drops the packed copies for f32). Non-resident weights are
    /// dequantised one tensor at a time into a temporary, so a compressed (F16 / Q8_0) model never holds a float copy.
    func setCompute(_ p: ComputePrecision) throws {
        compute = p
        for param in params {
            guard let packer = param.packer else { continue }
            if p == .f32 { param.packed = nil; continue }
            if param.isResident {
                param.packed = packer(p, param.ptr)
            } else {
                param.packed = try param.floatCopy().withUnsafeBufferPointer { packer(p, $0.baseAddress!) }
            }
        }
    }

    /// Checks names and shapes strictly, then loads every parameter into one contiguous float32 allocation.
    func load(from source: any WeightSource, residency: WeightResidency = .float32) throws {
        var missing: [String] = [], wrong: [(String, [Int], [Int])] = []
        for p in params {
            guard let info = source.weightInfo(p.name) else { missing.append(p.name); continue }
            if info.shape != p.shape { wrong.append((p.name, p.shape, info.shape)) }
        }
        let unexpected = source.weightNames.filter { byName[$0] == nil }.sorted()
        if !missing.isEmpty || !unexpected.isEmpty || !wrong.isEmpty {
            throw WeightMismatchError(
                file: source.sourcePath, missing: missing.sorted(), unexpected: unexpected,
                wrongShape: wrong.sorted { $0.0 < $1.0 })
        }
        if residency == .compressedConvolutions {
            for p in params where p.shape.count == 4 && source.weightInfo(p.name)?.dtype != "F32" {
                p.isResident = false
                p.source = source
            }
        }
        // Non-resident tensors are converted once here too, so a bad tensor fails at load, not mid-pass.
        for p in params where !p.isResident { _ = try p.floatCopy() }
        let total = residentFloatCount
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1) * 4, alignment: 64)
        let base = raw.bindMemory(to: Float.self, capacity: max(total, 1))
        storage = base
        var off = 0
        for p in params where p.isResident {
            p.data = base + off
            try source.loadF32(p.name, into: UnsafeMutableBufferPointer(start: p.data, count: p.count))
            source.dropCachedPages(p.name)  // peak RSS: file pages and the float32 copy not both resident
            off += p.count
        }
    }

    deinit { storage.map { UnsafeMutableRawPointer($0).deallocate() } }
}
