// Runs a command as a child process and reports its peak resident set size (`dmilo bench memory`, `throughput`,
// `unet --torch`), and the option and scratch-folder handling those benchmarks share.
//
// Peak RSS is a per-process high-water mark, so each configuration needs a fresh process; wait4 returns the child's
// ru_maxrss (Linux: KiB, and it survives the child's own re-exec with OPENBLAS_CORETYPE).

import Foundation

#if canImport(Glibc)
import Glibc
#endif

enum ChildProcess {
    struct Result {
        var status: Int32
        var peakRSSMiB: Double
        /// What the child wrote to stdout (stderr passes through to ours, so failures stay visible).
        var output: String
    }

    /// Spawns `executable arguments…` with our environment, waits, and returns its exit status and ru_maxrss.
    static func run(_ executable: String, _ arguments: [String]) throws -> Result {
        let capture = NSTemporaryDirectory() + "dmilo-child-\(getpid())-\(UUID().uuidString).out"
        defer { unlink(capture) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, capture, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard rc == 0 else { throw CLIError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw CLIError("wait4 on \(executable): \(String(cString: strerror(errno)))") }
        }
        // WIFEXITED / WEXITSTATUS are macros Swift does not import.
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let output = (try? String(contentsOfFile: capture, encoding: .utf8)) ?? ""
        return Result(status: exit, peakRSSMiB: Double(usage.ru_maxrss) / 1024, output: output)
    }

    /// This executable's absolute path (to spawn ourselves).
    static func currentExecutable() throws -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { throw CLIError("cannot resolve /proc/self/exe") }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A JSON-object option (`--operator`, `--solver`) of the child-process benchmarks.
func jsonOption(_ text: String, _ option: String) throws -> [String: Any] {
    guard let o = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw CLIError("\(option) must be a JSON object")
    }
    return o
}

/// The scratch folder of a benchmark's children, created: `--work` (which must be new or empty), else a temporary
/// folder (the caller removes that one).
func scratchFolder(_ work: String?, name: String) throws -> URL {
    if let work, let items = try? FileManager.default.contentsOfDirectory(atPath: work), !items.isEmpty {
        throw CLIError("--work: \(work) is not empty")
    }
    let dir = URL(fileURLWithPath: work ?? NSTemporaryDirectory() + "dmilo-bench-\(name)-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}
