// `dmilo inspect MODEL`: architecture, tensor types, bytes, schedule, checksum.

import ArgumentParser
import DMiloFormats
import DMiloKernels
import DMiloModel
import Foundation

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Describe a model: architecture, tensors, bytes, checksum.")

    @Argument(help: "diffusers or converted ADM folder (config.json + safetensors), .safetensors or .gguf file") var model: String

    @Flag(help: "Print the description as one JSON object on stdout (keys in docs/INTERFACE.md).") var json = false

    func run() throws {
        let file = try ModelFile(path: model)
        let net = try file.instantiate()
        var counts: [String: Int] = [:]
        for (_, d) in net.tensorDTypes { counts[d, default: 0] += 1 }
        let size = (try? FileManager.default.attributesOfItem(atPath: net.weightsPath)[.size] as? Int) ?? nil
        let flops = net.forwardFlops(batch: 1)
        let s = file.schedule
        let stored = file.format == .gguf || file.architecture == .adm
        let sha = try file.sha256()
        if json {
            let shape = net.sampleShape
            let doc: [String: Any] = [
                "model": model, "weights": net.weightsPath, "architecture": net.architectureSummary,
                "image_shape": [shape.channels, shape.height, shape.width],
                "parameters": net.parameterCount, "tensors": net.tensorDTypes.count, "tensor_types": counts,
                "file_bytes": size ?? NSNull(), "float32_bytes": net.parameterBytes,
                "gflop_per_forward": Double(flops) / 1e9, "kernels": CPUFeatures.summary,
                "vjp_workspace_bytes": net.vjpMemoryBytes(batch: 1),
                "schedule": [
                    "beta_schedule": "\(s.betaSchedule)", "beta_start": s.betaStart, "beta_end": s.betaEnd,
                    "train_steps": s.trainSteps, "prediction": "epsilon", "stored_with_model": stored,
                ] as [String: Any],
                "sha256": sha,
            ]
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])
            FileHandle.standardOutput.write(data + Data("\n".utf8))
            return
        }
        print("model:        \(model)")
        print("weights:      \(net.weightsPath)")
        print("architecture: \(net.architectureSummary)")
        if let c = (net as? UNet2DModel)?.config {
            print("time MLP:     \(c.timeEmbedDim) wide; mid block \(c.hasMidBlock ? "resnet-\(c.addAttention ? "attention-" : "")resnet, scale \(c.midBlockScaleFactor)" : "none")")
        }
        print("parameters:   \(net.parameterCount) (\(String(format: "%.2f", Double(net.parameterCount) / 1e6)) M), \(net.tensorDTypes.count) tensors")
        print("tensor types: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
        print("bytes:        file \(size.map(String.init) ?? "?"), float32 in memory \(net.parameterBytes)")
        print("compute:      \(String(format: "%.3f", Double(flops) / 1e9)) GFLOP per forward at batch 1, \(net.sampleShape.height)²")
        print("kernels:      \(CPUFeatures.summary)")
        print("memory:       ~\(net.vjpMemoryBytes(batch: 1) / (1 << 20)) MiB workspace for forward+VJP at batch 1")
        print(
            "schedule:     \(s.betaSchedule) β \(s.betaStart)…\(s.betaEnd), \(s.trainSteps) steps, ε-prediction (\(stored ? "stored with the model" : "dmilo default; not stored in the UNet folder"))")
        print("sha256:       \(sha)")
    }
}
