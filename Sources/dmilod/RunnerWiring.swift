import DMiloJobs
import DMiloSpool

/// The product runner: loads the model named by `config.model` and returns the reconstruction runner.
/// WIRING POINT for the lead: replace the body with the DMiloJobs reconstruction runner (UNet loader +
/// operators + solvers). Until then dmilod refuses to start without `--test-runner`, with a one-line reason.
let productRunnerLoader: RunnerLoader = { config in
    guard let model = config.model else {
        throw SpoolError("no model given (--model MODEL or \"model\" in the config)")
    }
    throw SpoolError("model \(model): this build has no reconstruction runner linked in")
}
