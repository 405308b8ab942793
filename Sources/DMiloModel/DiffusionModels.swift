// What every loaded diffusion network offers the tools (both architectures run on `UNetRuntime`); files are
// opened through `ModelFile`.

import DMiloKernels

/// A loaded diffusion network (diffusers `UNet2DModel` or guided-diffusion `ADMUNet`) with what the tools report.
public protocol DiffusionUNet: NoisePredictor {
    /// Where the weights came from (file path).
    var weightsPath: String { get }
    /// Stored dtype of each tensor.
    var tensorDTypes: [String: String] { get }
    /// Number of float parameters.
    var parameterCount: Int { get }
    /// Bytes of resident float32 parameters (non-resident ones live in the mapped file); shared by replicas.
    var parameterBytes: Int { get }
    /// Bytes held by the workspace arenas (activations, temporaries, gradients) after the last pass.
    var workspaceBytes: Int { get }
    /// Activation checkpointing per op in the VJP (bit-identical results, smaller tape).
    var recomputeActivations: Bool { get set }
    /// One line naming the architecture and its hyperparameters.
    var architectureSummary: String { get }
    /// A timestep in the model's own units for benchmarks and calibration (a train step, or σ for Fourier models).
    var typicalTimestep: Float { get }
    /// Forward FLOPs at batch B and the model's sample size.
    func forwardFlops(batch: Int) -> Int
    /// Another instance sharing these weights (no copy, no re-read), with its own workspace and tape.
    func replica() -> Self
    /// Arithmetic of the convolution GEMMs; set through `ComputeSelection.apply` (accuracy-gated).
    var computePrecision: ComputePrecision { get }
    func setComputePrecision(_ p: ComputePrecision) throws
}

extension UNetConfig: UNetArchitecture {
    public var typicalTimestep: Float { timeEmbeddingType == .fourier ? 0.5 : 500 }
}

extension ADMConfig: UNetArchitecture {
    public var typicalTimestep: Float { 500 }
}

/// Model loading by file content, for callers that need one instance (tests, tools); see `ModelFile`.
public enum DiffusionModels {
    /// GGUF `general.architecture` of an ADM model written by dmilo-quantize.
    public static let admArchitecture = "dmilo.adm"

    public enum Kind: String, Sendable { case unet2d, adm }

    /// Loads the model at `path`. GGUF files keep their compressed convolution weights compressed (see
    /// `WeightResidency`); `residency` applies to safetensors models.
    public static func load(path: String, residency: WeightResidency = .float32) throws -> any DiffusionUNet {
        try ModelFile(path: path).instantiate(residency: residency)
    }
}
