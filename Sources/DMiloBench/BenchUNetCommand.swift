// `dmilo bench unet`: forward and forward+VJP latency of the UNet, GFLOPS, peak RSS, optionally against PyTorch
// (Tools/bench_torch.py on the same folder, batch and thread count).

import ArgumentParser
import DMiloJobs
import DMiloKernels
import DMiloModel
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct BenchUNetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unet", abstract: "Time UNet forward and forward+VJP.")

    @Option(help: "model folder (diffusers or converted ADM), .safetensors or .gguf") var model: String
    @Option(help: "batch size") var batch: Int = 1
    @Option(help: "threads (default: all cores)") var threads: Int?
    @Option(help: "timed iterations (after one warm-up)") var iterations: Int = 10
    @Flag(name: .customLong("compressed-weights"), help: "keep F16/BF16 conv weights compressed (dequantised per layer)")
    var compressedWeights = false
    @Flag(help: "recompute each op's activations in the VJP instead of storing them (UNet2DModel.recomputeActivations)")
    var recompute = false
    @Flag(help: "print time per op kind (GEMM, im2col, GroupNorm, attention, threading, elementwise)") var profile = false
    @Option(help: computeHelp) var compute: ComputeMode = .auto
    @Flag(help: "also run Tools/bench_torch.py (python from $DMILO_PYTHON or a .venv-tools found upwards)") var torch = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        if let threads { Threading.count = threads }
        let net = try DiffusionModels.load(path: model, residency: compressedWeights ? .compressedConvolutions : .float32)
        let precision = try ComputeSelection.apply(compute, to: net) { print($0) }
        let rssAfterLoad = peakRSSMegabytes()
        net.recomputeActivations = recompute
        let s = net.sampleShape
        var rng = SeededRandom(seed: 0, stream: "bench")
        let x = rng.gaussianTensor(shape: [batch, s.channels, s.height, s.width])
        let cot = rng.gaussianTensor(shape: [batch, net.outputChannels, s.height, s.width])
        let t = net.typicalTimestep

        let forwardPass = { _ = try net.forward(x, timestep: t) }
        let vjpPass = {
            let (_, tape) = try net.forwardForVJP(x, timestep: t)
            _ = try net.vjp(tape, cotangent: cot)
        }
        /// Median milliseconds of `iterations` timed runs after one warm-up run (which sizes the arenas).
        func medianMs(_ pass: () throws -> Void) throws -> Double {
            try pass()
            let times = try (0..<iterations).map { _ in
                let s = now(); try pass(); return now() - s
            }
            return median(times) * 1e3
        }
        let fMs = try medianMs(forwardPass), vMs = try medianMs(vjpPass)
        let flops = Double(net.forwardFlops(batch: batch))
        // The input VJP of a conv/linear/attention layer costs as many FLOPs as its forward: forward+VJP ≈ 2×.
        print("model        \(model)")
        print("architecture \(net.architectureSummary)")
        print(
            "setup        batch \(batch), \(s.height)², threads \(Threading.count), OpenBLAS core \(BLAS.coreName), "
                + "OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"), iterations \(iterations), "
                + "weights \(compressedWeights ? "compressed conv" : "float32")\(recompute ? ", recompute" : "")")
        print("compute      \(precision.rawValue) (--compute \(compute.rawValue)); \(CPUFeatures.summary)")
        print(String(format: "params       %.2f M, %.3f GFLOP per forward", Double(net.parameterCount) / 1e6, flops / 1e9))
        print("| pass | median ms | GFLOPS |")
        print("|---|---|---|")
        print(String(format: "| forward | %.2f | %.1f |", fMs, flops / (fMs * 1e6)))
        print(String(format: "| forward+VJP | %.2f | %.1f |", vMs, 2 * flops / (vMs * 1e6)))
        print(
            String(
                format: "workspace    %.1f MiB (arenas), weights %.1f MiB f32", Double(net.workspaceBytes) / 1048576,
                Double(net.parameterBytes) / 1048576))
        print("peak RSS     \(peakRSSMegabytes().map { String(format: "%.1f MiB", $0) } ?? "?") (VmHWM; \(rssAfterLoad.map { String(format: "%.1f MiB", $0) } ?? "?") after loading)")

        if profile {
            let f = try BenchUNetProfile.measure(iterations: iterations, forwardPass)
            let v = try BenchUNetProfile.measure(iterations: iterations, vjpPass)
            BenchUNetProfile.printTable([("forward", f.kinds, f.total), ("forward+VJP", v.kinds, v.total)])
        }
        if torch {
            let r = try runTorch()
            print("| PyTorch \(r.version) | forward \(String(format: "%.2f", r.forward)) ms | forward+VJP \(String(format: "%.2f", r.vjp)) ms |")
            print(String(format: "ratio (torch / dmilo): forward %.2f×, forward+VJP %.2f×  (>1 = dmilo faster)", r.forward / fMs, r.vjp / vMs))
            if let rss = r.peakRSS { print(String(format: "torch peak RSS %.1f MiB", rss)) }
        }
    }

    struct TorchResult { var forward: Double, vjp: Double, version: String, peakRSS: Double? }

    func runTorch() throws -> TorchResult {
        let (python, script) = try PythonTools.locate(script: "bench_torch.py")
        let r = try ChildProcess.run(
            python,
            [
                script, "--model", model, "--batch", String(batch), "--threads",
                String(Threading.count), "--iterations", String(iterations),
            ])
        guard r.status == 0 else { throw CLIError("--torch: \(script) exited with status \(r.status)") }
        let text = r.output
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let f = obj["forward_ms"] as? Double, let v = obj["vjp_ms"] as? Double
        else {
            throw CLIError("--torch: could not parse the output of \(script): \(text.suffix(300))")
        }
        return TorchResult(forward: f, vjp: v, version: obj["torch"] as? String ?? "?", peakRSS: obj["peak_rss_mb"] as? Double)
    }
}

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func median(_ v: [Double]) -> Double {
    let s = v.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
}
