import Foundation

extension ClaimedJob {
    /// Default manifest size limit (1 MiB), as in the daemon.
    public static let defaultMaxManifestBytes = 1 << 20

    /// Loads a manifest from disk the way the daemon does, for `dmilo reconstruct JOB.json`: the job's files
    /// resolve relative to the manifest's folder, `calibration/FILE` to `calibration/` beside it, the same
    /// name, symlink, type and size rules apply, and every named file is checked before returning.
    /// `settingsFor` turns the parsed manifest into settings (e.g. `DaemonConfig.jobSettings(for:)`).
    public static func load(
        manifestPath: String, maxManifestBytes: Int = defaultMaxManifestBytes,
        settingsFor: (Manifest) -> JobSettings = { _ in JobSettings() }
    ) throws -> ClaimedJob {
        let url = URL(fileURLWithPath: manifestPath)
        let file = url.lastPathComponent
        let data = try SafeFile.read(url.path, display: file, field: nil, maxBytes: maxManifestBytes)
        let name = file.hasSuffix(".json") ? String(file.dropLast(5)) : file
        guard JobName.isValid(name) else {
            throw JobError.manifest("\(file): job name `\(name)` is not [A-Za-z0-9._-]{1,128} or starts with '.'")
        }
        let manifest = try Manifest.parse(data, file: file)
        let dir = url.deletingLastPathComponent()
        let job = ClaimedJob(
            name: name, manifest: manifest, jobDirectory: dir,
            calibrationDirectory: dir.appendingPathComponent("calibration"), settings: settingsFor(manifest))
        try job.checkFiles()
        return job
    }
}
