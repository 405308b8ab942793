import DMiloModel
import Foundation

/// The daemon's configured models by name (config `models`, the default as `default`), each opened on first use
/// and then kept mapped for the daemon's (or the job worker's) lifetime. A worker process therefore loads only the
/// model its job names. Two names for one path share one load.
public final class ModelRegistry: @unchecked Sendable {
    /// Name → path; `default` is the default model.
    public let paths: [String: String]
    let compute: ComputeMode
    let log: @Sendable (String) -> Void
    /// Loads happen under the lock, so two jobs asking for the same model at once load it once.
    private let lock = NSLock()
    private var loaded: [String: LoadedModel] = [:]

    public init(
        paths: [String: String], compute: ComputeMode = .auto,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.paths = paths
        self.compute = compute
        self.log = log
    }

    /// A model name (config `models` key, manifest `model`): `[A-Za-z0-9._-]{1,64}`, so it is safe in logs, journal
    /// fields and metrics.
    public static func isValidName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64
            && s.utf8.allSatisfy { b in
                (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
                    || b == 0x2E || b == 0x5F || b == 0x2D
            }
    }

    /// A model that cannot be opened, as one line naming it (the daemon's start-up error).
    public struct LoadFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The model a manifest's `model` names (nil = `default`). `file` is the manifest's name for error messages.
    /// Throws `model.unknown` for a name that is not configured and `model.missing` for a path that does not exist.
    public func model(named name: String?, file: String) throws -> LoadedModel {
        let n = name ?? "default"
        guard let path = paths[n] else {
            let known = paths.keys.sorted().joined(separator: ", ")
            throw JobError(
                code: JobError.modelUnknown, message: "\(file): model `\(n)` is not configured (configured: \(known))",
                field: "model")
        }
        lock.lock(); defer { lock.unlock() }
        if let m = loaded[path] { return m }
        guard FileManager.default.fileExists(atPath: path) else {
            throw JobError(
                code: JobError.modelMissing, message: "\(file): model `\(n)`: \(path) does not exist",
                field: "model")
        }
        let m: LoadedModel
        do { m = try LoadedModel.open(path: path, compute: compute, log: log) } catch {
            throw LoadFailure(description: "model \(path): \(error)")
        }
        loaded[path] = m
        return m
    }

    /// Names currently loaded (for tests and logs).
    public var loadedPaths: [String] { lock.withLock { loaded.keys.sorted() } }
}

/// The daemon's runner: picks the job's model by name from a ``ModelRegistry`` and runs ``ReconstructionRunner``
/// on it, so the memory plan and `metrics.json` describe the model the job actually used.
public struct NamedModelRunner: JobRunner {
    public let registry: ModelRegistry

    public init(registry: ModelRegistry) { self.registry = registry }

    /// Opens and checks the default model (before READY=1: a bad default stops the daemon with one line).
    public func prepare() throws {
        do { _ = try registry.model(named: nil, file: "config") } catch let e as JobError {
            throw ModelRegistry.LoadFailure(description: "model \(registry.paths["default"] ?? "-"): \(e.message)")
        }
    }

    public func run(job: ClaimedJob, outputDirectory: URL, control: JobControl) throws -> JobOutcome {
        let model = try registry.model(named: job.manifest.model, file: "\(job.name).json")
        return try ReconstructionRunner(model: model).run(job: job, outputDirectory: outputDirectory, control: control)
    }
}
