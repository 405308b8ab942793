import DMiloJobs
import DMiloSpool

/// The product runner: the configured models by name (config `model` / `models`), each opened on first use and kept
/// mapped; the daemon calls `prepare()` to load and verify the default model (config, every tensor's name, shape and
/// bounds, and its sha256 for metrics) before READY=1, so a bad default model makes dmilod exit non-zero with one
/// line. Each job then runs the reconstruction runner shared with `dmilo reconstruct` on the model it names.
let productRunnerLoader: RunnerLoader = { config in
    guard config.model != nil else {
        throw SpoolError("no model given (--model MODEL, \"model\" or \"models\": {\"default\": …} in the config)")
    }
    return NamedModelRunner(registry: ModelRegistry(paths: config.modelPaths, compute: config.compute) { print($0) })
}
