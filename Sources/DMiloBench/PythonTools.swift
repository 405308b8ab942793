// Finds a Tools/ script and the Python that runs it, for the `--torch` comparisons of `dmilo bench`.

import Foundation

enum PythonTools {
    /// (python, script path): python from $DMILO_PYTHON or a `.venv-tools` found walking up from the working
    /// directory; the script from $DMILO_TOOLS_DIR or a `Tools/` found the same way.
    static func locate(script name: String) throws -> (python: String, script: String) {
        let env = ProcessInfo.processInfo.environment
        let fm = FileManager.default
        var python = env["DMILO_PYTHON"]
        var script: String?
        var dir = fm.currentDirectoryPath
        for _ in 0..<6 {
            let s = (dir as NSString).appendingPathComponent("Tools/\(name)")
            if script == nil, fm.fileExists(atPath: s) { script = s }
            let p = (dir as NSString).appendingPathComponent(".venv-tools/bin/python")
            if python == nil, fm.isExecutableFile(atPath: p) { python = p }
            dir = (dir as NSString).deletingLastPathComponent
        }
        if let d = env["DMILO_TOOLS_DIR"] { script = (d as NSString).appendingPathComponent(name) }
        guard let script else { throw CLIError("--torch: Tools/\(name) not found (run from the repository or set DMILO_TOOLS_DIR)") }
        guard let python else { throw CLIError("--torch: no python (set DMILO_PYTHON or create .venv-tools)") }
        return (python, script)
    }
}
