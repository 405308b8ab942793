// `dmilo eval`: one raw UNet call on an .npy batch, optionally with the input VJP (docs/INTERFACE.md).

import ArgumentParser
import DMiloBench
import DMiloFormats
import DMiloKernels
import DMiloModel
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Run the UNet once on X (B,C,H,W) at timestep T; optionally write dL/dX for L = sum(C ⊙ UNet(X,T)).")

    @Option(help: "Model: diffusers or converted ADM folder (config.json + safetensors), .safetensors or dmilo .gguf file.") var model: String
    @Option(help: "Input array, float32/float64 .npy of shape (B,C,H,W).") var input: String
    @Option(help: "Train timestep t (e.g. 0..999), the same for the whole batch.") var timestep: Float
    @Option(help: "Where to write the raw output (B,C_out,H,W) as float32 .npy.") var out: String
    @Option(help: "Cotangent C (same shape as the output) for the vector-Jacobian product.") var cotangent: String?
    @Option(name: .customLong("input-grad"), help: "Where to write dL/dX (requires --cotangent).") var inputGrad: String?
    @Option(help: "Threads for BLAS and parallel loops (default: all cores).") var threads: Int?
    @Option(help: computeHelp) var compute: ComputeMode = .auto

    func validate() throws {
        if (cotangent == nil) != (inputGrad == nil) {
            throw ValidationError("--cotangent and --input-grad go together")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        if let threads { Threading.count = threads }
        let net = try DiffusionModels.load(path: model)
        try ComputeSelection.apply(compute, to: net) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let x = try NPY.readTensor(path: input)
        guard x.shape.count == 4 else { throw CLIError("\(input): shape \(x.shape) is not (B, C, H, W)") }
        let inChannels = net.sampleShape.channels
        guard x.shape[1] == inChannels else {
            throw CLIError("\(input): has \(x.shape[1]) channels, the model takes \(inChannels)")
        }
        do {
            if let cotangent, let inputGrad {
                let cot = try NPY.readTensor(path: cotangent)
                let want = [x.shape[0], net.outputChannels, x.shape[2], x.shape[3]]
                guard cot.shape == want else { throw CLIError("\(cotangent): shape \(cot.shape), expected the output shape \(want)") }
                let (y, tape) = try net.forwardForVJP(x, timestep: timestep)
                let g = try net.vjp(tape, cotangent: cot)
                try NPY.write(path: out, tensor: y)
                try NPY.write(path: inputGrad, tensor: g)
            } else {
                try NPY.write(path: out, tensor: try net.forward(x, timestep: timestep))
            }
        } catch let e as ModelError {
            throw CLIError("\(input): \(e.message)")
        }
    }
}
