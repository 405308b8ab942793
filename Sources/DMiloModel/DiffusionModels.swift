// One door to every model file dmilo runs: the architecture is chosen by what travels with the weights
// (config.json `_class_name`, GGUF `general.architecture`), never by the caller. `dmilo eval`, `reconstruct`,
// `bench`, `inspect`, `dmilod` and `dmilo-quantize` all open models here.

import DMiloFormats
import DMiloKernels
import Foundation

/// A loaded diffusion network (diffusers `UNet2DModel` or guided-diffusion `ADMUNet`) with what the tools report.
public protocol DiffusionUNet: NoisePredictor {
    /// Where the weights came from (file path).
    var weightsPath: String { get }
    /// Stored dtype of each tensor.
    var tensorDTypes: [String: String] { get }
    /// Number of float parameters.
    var parameterCount: Int { get }
    /// Bytes of resident float32 parameters.
    var parameterBytes: Int { get }
    /// Bytes held by the workspace arenas after the last pass.
    var workspaceBytes: Int { get }
    /// Activation checkpointing per op in the VJP (bit-identical results, smaller tape).
    var recomputeActivations: Bool { get set }
    /// One line naming the architecture and its hyperparameters.
    var architectureSummary: String { get }
    /// A timestep in the model's own units for benchmarks and calibration (a train step, or σ for Fourier models).
    var typicalTimestep: Float { get }
    /// Forward FLOPs at batch B and the given size (nil: the model's sample size).
    func forwardFlops(batch: Int, height: Int?, width: Int?) -> Int
    /// Arithmetic of the convolution GEMMs; set through `ComputeSelection.apply` (accuracy-gated).
    var computePrecision: ComputePrecision { get }
    func setComputePrecision(_ p: ComputePrecision) throws
}

extension DiffusionUNet {
    public func forwardFlops(batch: Int) -> Int { forwardFlops(batch: batch, height: nil, width: nil) }
}

extension UNet2DModel: DiffusionUNet {
    public var architectureSummary: String { config.summary }
    public var typicalTimestep: Float { config.timeEmbeddingType == .fourier ? 0.5 : 500 }
}

extension ADMUNet: DiffusionUNet {
    public var architectureSummary: String { config.summary }
    public var typicalTimestep: Float { 500 }
}

/// Model discovery and loading by file content.
public enum DiffusionModels {
    /// GGUF `general.architecture` of an ADM model written by dmilo-quantize.
    public static let admArchitecture = "dmilo.adm"

    public enum Kind: String, Sendable { case unet2d, adm }

    /// Folder → (config.json, weights file); a .safetensors file → (config.json beside it, the file).
    public static func locate(_ path: String) throws -> (config: String, weights: String) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ModelError("\(path): no such model file or folder")
        }
        if isDir.boolValue {
            let candidates = ["diffusion_pytorch_model.safetensors", "model.safetensors"].map { (path as NSString).appendingPathComponent($0) }
            guard let w = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw ModelError("\(path): folder has neither diffusion_pytorch_model.safetensors nor model.safetensors")
            }
            return ((path as NSString).appendingPathComponent("config.json"), w)
        }
        guard path.hasSuffix(".safetensors") else { throw ModelError("\(path): not a model folder, .safetensors or .gguf file") }
        let folder = (path as NSString).deletingLastPathComponent
        return (((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("config.json"), path)
    }

    /// Which architecture the model at `path` (folder, .safetensors or .gguf) holds.
    public static func kind(ofModelAt path: String) throws -> Kind {
        if path.hasSuffix(".gguf") {
            let arch = try GGUFFile(path: path).metadata[GGUFKeys.architecture]?.stringValue
            switch arch {
            case GGUFKeys.architectureValue: return .unet2d
            case admArchitecture: return .adm
            default:
                throw ModelError("\(path): general.architecture is \(arch ?? "missing"), expected \(GGUFKeys.architectureValue) or \(admArchitecture)")
            }
        }
        let (config, _) = try locate(path)
        guard let data = FileManager.default.contents(atPath: config) else { throw ModelError("\(config): missing (model config)") }
        let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        return obj?["_class_name"] as? String == ADMConfig.className ? .adm : .unet2d
    }

    /// Loads the model at `path`. GGUF files keep their compressed convolution weights compressed (see
    /// `WeightResidency`); `residency` applies to safetensors models.
    public static func load(path: String, residency: WeightResidency = .float32) throws -> any DiffusionUNet {
        switch try kind(ofModelAt: path) {
        case .unet2d:
            return try UNet2DModel.load(path: path, residency: residency)
        case .adm:
            if path.hasSuffix(".gguf") { return try loadADMGGUF(path: path) }
            let (config, weights) = try locate(path)
            return try ADMUNet.load(folder: (config as NSString).deletingLastPathComponent, weightsFile: weights, residency: residency)
        }
    }

    /// A dmilo GGUF file holding an ADM model: config from `dmilo.config_json` (the converter's config.json).
    public static func loadADMGGUF(path: String, residency: WeightResidency = .compressedConvolutions) throws -> ADMUNet {
        let file = try GGUFFile(path: path)
        guard file.metadata[GGUFKeys.architecture]?.stringValue == admArchitecture else {
            throw ModelError("\(path): general.architecture is \(file.metadata[GGUFKeys.architecture]?.stringValue ?? "missing"), expected \(admArchitecture)")
        }
        guard let json = file.metadata[GGUFKeys.configJSON]?.stringValue else {
            throw ModelError("\(path): metadata \(GGUFKeys.configJSON) is missing")
        }
        let config = try ADMConfig.parse(Data(json.utf8), file: "\(path) (\(GGUFKeys.configJSON))")
        return try ADMUNet(config: config, weights: file, residency: residency)
    }

    /// The training noise schedule of the model at `path`: GGUF metadata, an ADM config's schedule keys, or the
    /// DDPM default for diffusers folders (algorithms.md §1.1).
    public static func schedule(ofModelAt path: String) throws -> NoiseSchedule {
        if path.hasSuffix(".gguf") { return try UNet2DModel.schedule(ofGGUF: path) }
        guard try kind(ofModelAt: path) == .adm else { return NoiseSchedule() }
        let (config, _) = try locate(path)
        guard let data = FileManager.default.contents(atPath: config) else { throw ModelError("\(config): missing") }
        return try ADMConfig.parse(data, file: config).schedule
    }
}
