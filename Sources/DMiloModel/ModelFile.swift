// One door to every model file dmilo runs, opened once: where the weights and config are, which container and
// architecture they hold, the parsed header (the weight source), the noise schedule and the weights' sha256.
// The architecture is chosen by what travels with the weights (config.json `_class_name`, GGUF
// `general.architecture`), never by the caller. `dmilod`, every `dmilo` command and `dmilo-quantize` open models
// here; `ModelPool` (beside it) hands out instances that share the loaded weights.

import DMiloFormats
import Foundation

/// A model file or folder, located, routed and parsed once. Every field comes from the file and is checked before
/// anything is sized from it; a corrupt file is a `FormatError`/`ModelError` naming the file and the field.
public final class ModelFile: @unchecked Sendable {
    public enum Format: String, Sendable { case safetensors, gguf }
    public enum Config {
        case unet2d(UNetConfig)
        case adm(ADMConfig)
    }

    /// As given by the caller.
    public let path: String
    /// The file holding the tensors (.safetensors or .gguf).
    public let weightsPath: String
    /// config.json of a folder model; nil for GGUF (its config is metadata).
    public let configPath: String?
    public let format: Format
    public let architecture: DiffusionModels.Kind
    public let config: Config
    /// The config JSON text (config.json, or GGUF `dmilo.config_json`).
    public let configJSON: Data
    public let schedule: NoiseSchedule
    /// The tensors under their canonical names (safetensors header or GGUF header, parsed once here).
    public let weights: any WeightSource
    private var hash: String?
    private let lock = NSLock()

    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ModelError("\(path): no such model file or folder")
        }
        if !isDir.boolValue && !path.hasSuffix(".safetensors") {  // any other file must be GGUF (checked by magic)
            let file = try GGUFFile(path: path)
            (weightsPath, configPath, format, weights) = (path, nil, .gguf, file)
            let arch = file.metadata[GGUFKeys.architecture]?.stringValue
            switch arch {
            case GGUFKeys.architectureValue: architecture = .unet2d
            case DiffusionModels.admArchitecture: architecture = .adm
            default:
                throw FormatError(
                    file: path, field: GGUFKeys.architecture,
                    "is \(arch ?? "missing"), expected \(GGUFKeys.architectureValue) or \(DiffusionModels.admArchitecture)")
            }
            guard let json = file.metadata[GGUFKeys.configJSON]?.stringValue else {
                throw FormatError(file: path, field: GGUFKeys.configJSON, "is missing")
            }
            configJSON = Data(json.utf8)
            config = try Self.parseConfig(configJSON, adm: architecture == .adm, file: "\(path) (\(GGUFKeys.configJSON))")
            schedule = try Self.schedule(of: file)
            return
        }
        let (cfg, w) = try Self.locate(path, isDirectory: isDir.boolValue)
        (weightsPath, configPath, format) = (w, cfg, .safetensors)
        do { configJSON = try Data(contentsOf: URL(fileURLWithPath: cfg)) } catch {
            throw ModelError("\(cfg): cannot read the model config (\(error.localizedDescription))")
        }
        let obj = (try? JSONSerialization.jsonObject(with: configJSON)) as? [String: Any]
        architecture = obj?["_class_name"] as? String == ADMConfig.className ? .adm : .unet2d
        config = try Self.parseConfig(configJSON, adm: architecture == .adm, file: cfg)
        let file = try SafetensorsFile(path: w)
        // guided-diffusion names are used as stored; diffusers legacy attention names are renamed
        weights = architecture == .adm ? file : try RenamedWeightSource(file, rename: RenamedWeightSource.diffusersAttentionName)
        if case .adm(let c) = config {
            schedule = try NoiseSchedule(
                validating: c.numTrainTimesteps, betaStart: c.betaStart, betaEnd: c.betaEnd,
                betaSchedule: c.betaSchedule, file: cfg)
        } else {
            schedule = NoiseSchedule()  // diffusers folders carry no schedule: the DDPM default
        }
    }

    /// A new network over this file's weights. GGUF models keep their compressed convolution weights compressed
    /// (see `WeightResidency`); `residency` applies to safetensors models.
    public func instantiate(residency: WeightResidency = .float32) throws -> any DiffusionUNet {
        let r = format == .gguf ? .compressedConvolutions : residency
        switch config {
        case .unet2d(let c): return try UNet2DModel(config: c, weights: weights, residency: r)
        case .adm(let c): return try ADMUNet(config: c, weights: weights, residency: r)
        }
    }

    /// sha256 of the weights file (the GGUF file itself, or the folder's safetensors), computed once.
    public func sha256() throws -> String {
        lock.lock(); defer { lock.unlock() }
        if let hash { return hash }
        let h = try SHA256.hex(ofFile: weightsPath)
        hash = h
        return h
    }

    /// Folder → (config.json, weights file); a .safetensors file → (config.json beside it, the file).
    static func locate(_ path: String, isDirectory: Bool) throws -> (config: String, weights: String) {
        if isDirectory {
            let candidates = ["diffusion_pytorch_model.safetensors", "model.safetensors"].map { (path as NSString).appendingPathComponent($0) }
            guard let w = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw ModelError("\(path): folder has neither diffusion_pytorch_model.safetensors nor model.safetensors")
            }
            return ((path as NSString).appendingPathComponent("config.json"), w)
        }
        let folder = (path as NSString).deletingLastPathComponent
        return (((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("config.json"), path)
    }

    static func parseConfig(_ data: Data, adm: Bool, file: String) throws -> Config {
        adm ? .adm(try ADMConfig.parse(data, file: file)) : .unet2d(try UNetConfig.parse(data, file: file))
    }

    /// The schedule in a dmilo GGUF file's metadata (a key left out means the DDPM default; a key of the wrong
    /// type or out of range is an error).
    static func schedule(of file: GGUFFile) throws -> NoiseSchedule {
        let md = file.metadata
        func value<T>(_ key: String, _ get: (GGUFValue) -> T?, _ fallback: T, _ want: String) throws -> T {
            guard let v = md[key] else { return fallback }
            guard let t = get(v) else { throw FormatError(file: file.path, field: key, "is \(v), expected \(want)") }
            return t
        }
        if let p = md[GGUFKeys.predictionType], p.stringValue != "epsilon" {
            throw FormatError(file: file.path, field: GGUFKeys.predictionType, "is \(p); dmilo runs epsilon-prediction models only")
        }
        return try NoiseSchedule(
            validating: value(GGUFKeys.trainSteps, \.intValue, 1000, "an integer"),
            betaStart: value(GGUFKeys.betaStart, \.doubleValue, 1e-4, "a number"),
            betaEnd: value(GGUFKeys.betaEnd, \.doubleValue, 0.02, "a number"),
            betaSchedule: value(GGUFKeys.betaSchedule, \.stringValue, "linear", "a string"),
            file: file.path, keyPrefix: "dmilo.schedule.")
    }
}

/// Instances of one model for concurrent jobs and multi-tape solvers. Every instance shares the first one's
/// weights (one parameter store, one mapping) and owns only its workspace, so a replica costs activations, not
/// weights.
public final class ModelPool: @unchecked Sendable {
    public let file: ModelFile
    private let first: any DiffusionUNet
    private var free: [any DiffusionUNet]
    private let lock = NSLock()

    public init(file: ModelFile, residency: WeightResidency = .float32) throws {
        self.file = file
        first = try file.instantiate(residency: residency)
        free = [first]
    }

    /// The first instance (for reporting: shapes, dtypes, parameter bytes).
    public var prototype: any DiffusionUNet { first }

    /// Takes an instance (a new weight-sharing replica if all are busy); give it back with `checkIn`.
    public func checkOut() -> any DiffusionUNet {
        lock.lock(); defer { lock.unlock() }
        return free.popLast() ?? first.replica()
    }

    public func checkIn(_ m: any DiffusionUNet) {
        lock.lock(); free.append(m); lock.unlock()
    }

    /// Another instance sharing the weights, with its own workspace (for solvers that hold several tapes at once).
    public func replica() -> any DiffusionUNet { first.replica() }
}
