import DMiloJobs
import DMiloSpool

/// The product runner: loads the model named by `config.model` (verifying it: config, every tensor's name, shape and
/// bounds, and its sha256 for metrics) and returns the reconstruction runner shared with `dmilo reconstruct`.
/// Called before READY=1, so a bad model makes dmilod exit non-zero with this one-line reason.
let productRunnerLoader: RunnerLoader = { config in
    guard let model = config.model else {
        throw SpoolError("no model given (--model MODEL or \"model\" in the config)")
    }
    do {
        return ReconstructionRunner(model: try LoadedModel.open(path: model, compute: config.compute) { print($0) })
    } catch {
        throw SpoolError("model \(model): \(error)")
    }
}
