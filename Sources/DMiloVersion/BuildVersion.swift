import CDMiloVersion

/// What `--version`, `metrics.json` (`dmilo_version`), the daemon's start line and its metrics file report, so two
/// builds can be told apart: semantic version, git commit (`-dirty` when built from a modified tree) and build date.
public enum BuildVersion {
    public static let semver = String(cString: dmilo_semver())
    public static let commit = String(cString: dmilo_git_commit())
    public static let date = String(cString: dmilo_build_date())

    /// `0.1.0 (commit 1a2b3c4d5e6f, built 2026-12-02T05:00:00Z)`.
    public static let description = "\(semver) (commit \(commit), built \(date))"

    /// The `--version` line of one binary: `dmilod 0.1.0 (commit …, built …)`.
    public static func line(_ program: String) -> String { "\(program) \(description)" }
}
