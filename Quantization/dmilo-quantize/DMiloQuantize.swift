// `dmilo-quantize INPUT --type f32|f16|q8_0 --output OUT.gguf`: offline conversion of float diffusers or ADM weights.

import ArgumentParser
import DMiloFormats
import DMiloQuantization
import DMiloVersion
import Foundation

@main
struct DMiloQuantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmilo-quantize",
        abstract: "Convert a float diffusers UNet2DModel folder, or an ADM folder from Tools/convert_adm.py, to a dmilo GGUF file (F32, F16 or Q8_0 tensors).",
        version: BuildVersion.line("dmilo-quantize"))

    @Argument(help: "Model folder: config.json + diffusion_pytorch_model.safetensors (or model.safetensors); diffusers or ADM (Tools/convert_adm.py).") var input: String
    @Option(help: "Tensor type: f32, f16 or q8_0.") var type: String
    @Option(help: "Output .gguf file (written via a temp file and rename).") var output: String
    @Option(help: "Refuse when the end-to-end output SNR (dB) is below this.") var snrThreshold = 30.0
    @Flag(help: "Write even when the SNR is below the threshold.") var force = false
    @Option(help: "Keep tensors whose name contains this F32 (repeatable).") var keep: [String] = []
    @Option(help: "`default` (keep biases, norms, time embedding, first/last conv in F32) or `all`.") var policy = "default"
    @Flag(help: "Print a JSON summary of what was written on stdout instead of the tables (errors as JSON too).")
    var json = false

    func validate() throws {
        guard ["f32", "f16", "q8_0"].contains(type) else { throw ValidationError("--type must be f32, f16 or q8_0") }
        guard ["default", "all"].contains(policy) else { throw ValidationError("--policy must be default or all") }
        guard output.hasSuffix(".gguf") else { throw ValidationError("--output must end in .gguf") }
    }

    func run() throws {
        let t: GGMLType = type == "f32" ? .f32 : (type == "f16" ? .f16 : .q8_0)
        let r: QuantizationReport
        do {
            r = try Quantizer.convert(
                input: input, policy: QuantizationPolicy(requested: t, keep: keep, all: policy == "all"),
                output: output, snrThreshold: snrThreshold, force: force)
        } catch {
            FileHandle.standardError.write(Data("dmilo-quantize: error: \(error)\n".utf8))
            if json { printJSON(["error": "\(error)", "input": input, "output": output]) }
            throw ExitCode(1)
        }
        if json {
            printJSON(summary(r))
            return
        }
        print("| tensor | shape | type | bytes | rel. RMS error |")
        print("|---|---|---|---|---|")
        for x in r.tensors {
            print("| \(x.name) | \(x.shape.map(String.init).joined(separator: "×")) | \(x.type.name) | \(x.bytes) | \(String(format: "%.2e", x.relativeRMSError)) |")
        }
        var counts: [String: Int] = [:]
        for x in r.tensors { counts[x.type.name, default: 0] += 1 }
        print("\ntensors: " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        print(String(format: "size: %d bytes (%.3f× the source's %d)", r.outputBytes, Double(r.outputBytes) / Double(max(r.sourceBytes, 1)), r.sourceBytes))
        print(
            "end-to-end SNR of the UNet output vs float (4 seeded N(0,I) inputs per timestep): " + r.snrByTimestep.map { String(format: "t=%d %.1f dB", $0.0, $0.1) }.joined(separator: ", ")
                + String(format: "; overall %.1f dB, relative RMS error %.2e", r.snr, r.outputRelativeRMSError))
        print("wrote \(output)")
    }

    /// The `--json` document (docs/INTERFACE.md "dmilo-quantize"): what was written and how close it is to float.
    func summary(_ r: QuantizationReport) -> [String: Any] {
        var counts: [String: Int] = [:]
        for x in r.tensors { counts[x.type.name, default: 0] += 1 }
        return [
            "input": input, "output": output, "type": type, "policy": policy,
            "source_bytes": r.sourceBytes, "output_bytes": r.outputBytes, "tensor_types": counts,
            "snr_db": r.snr, "output_relative_rms_error": r.outputRelativeRMSError,
            "snr_db_by_timestep": r.snrByTimestep.map { ["timestep": $0.0, "snr_db": $0.1] as [String: Any] },
            "tensors": r.tensors.map { x -> [String: Any] in
                [
                    "name": x.name, "shape": x.shape, "type": x.type.name, "bytes": x.bytes,
                    "relative_rms_error": x.relativeRMSError,
                ]
            },
        ]
    }

    func printJSON(_ doc: [String: Any]) {
        // Non-finite figures (an exact f32 copy has SNR +inf) become null: JSON has no infinity.
        func clean(_ v: Any) -> Any {
            if let d = v as? Double { return d.isFinite ? d : NSNull() }
            if let a = v as? [Any] { return a.map(clean) }
            if let o = v as? [String: Any] { return o.mapValues(clean) }
            return v
        }
        let data = (try? JSONSerialization.data(withJSONObject: clean(doc), options: [.sortedKeys])) ?? Data("{}".utf8)
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
