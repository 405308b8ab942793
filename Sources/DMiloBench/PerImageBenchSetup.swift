import DMiloJobs
import DMiloKernels
import DMiloModel
import Foundation

/// The start of every per-image benchmark (quality, uncertainty): the model opened at the chosen precision and thread
/// count with one network checked out, and the PNG files `first ..< first + count` of a folder in name order.
func openPerImageBench(
    model: String?, compute: ComputeMode, threads: Int?, images: String, first: Int, count: Int
) throws -> (
    loaded: LoadedModel, net: any DiffusionUNet, files: [String]
) {
    guard let model else { throw CLIError("--model is required") }
    if let threads { Threading.count = threads }
    let loaded = try LoadedModel.open(path: model, compute: compute) { print($0) }
    print("compute \(loaded.compute); \(CPUFeatures.summary)")
    let net = try loaded.checkOut()
    let files = try FileManager.default.contentsOfDirectory(atPath: images).filter { $0.hasSuffix(".png") }.sorted()
        .dropFirst(first).prefix(count)
    guard !files.isEmpty else { throw CLIError("\(images): no PNG files") }
    return (loaded, net, Array(files))
}
