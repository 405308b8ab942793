// `dmilo sample`: unconditional DDIM samples (eta = 0) from the model, as a grid picture.

import ArgumentParser
import DMiloBench
import DMiloImage
import DMiloJobs
import DMiloKernels
import DMiloModel
import DMiloSolvers
import Foundation

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Draw K samples with N deterministic DDIM steps (diffusers' leading grid, clip_sample, set_alpha_to_one).")

    @Option(help: "Model: diffusers folder, .safetensors or .gguf.") var model: String
    @Option(help: "DDIM steps N.") var steps: Int = 50
    @Option(help: "Number of samples K.") var count: Int = 16
    @Option(help: "Seed of the initial noise.") var seed: UInt64 = 0
    @Option(help: "Output grid PNG.") var out: String
    @Option(help: "Images per grid row (default: ceil(sqrt(K))).") var columns: Int?
    @Option(help: "Integer display scale of each image.") var scale: Int = 4
    @Option(help: "Threads for BLAS and parallel loops (default: all cores).") var threads: Int?
    @Option(help: computeHelp) var compute: ComputeMode = .auto

    func validate() throws {
        guard steps >= 1, steps <= 1000, count >= 1, count <= 1024, scale >= 1, scale <= 16 else {
            throw ValidationError("need 1 ≤ steps ≤ 1000, 1 ≤ count ≤ 1024, 1 ≤ scale ≤ 16")
        }
    }

    func run() throws {
        if let threads { Threading.count = threads }
        let loaded = try LoadedModel.open(path: model, compute: compute) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let net = try loaded.checkOut()
        let s = net.sampleShape
        var rng = SeededRandom(seed: seed, stream: "sample-noise")
        var x = rng.gaussianTensor(shape: [count, s.channels, s.height, s.width])
        let chain = DDIMStep.chain(
            grid: DDIMGrid.dmplug(steps: steps, trainSteps: loaded.schedule.trainSteps),
            trainSteps: loaded.schedule.trainSteps, schedule: loaded.schedule)
        let start = Date()
        for step in chain { x = try step.apply(x, model: net, keep: false).0 }
        Vec.clamp(x.count, x.data, -1, 1)
        let grid = try Montage.grid(batch: x, columns: columns ?? Int(Double(count).squareRoot().rounded(.up)), scale: scale)
        try ResultFiles.writeFile(Data(try grid.encoded()), URL(fileURLWithPath: out))
        print(String(format: "%d samples, %d DDIM steps in %.2f s -> %@", count, steps, Date().timeIntervalSince(start), out))
    }
}
