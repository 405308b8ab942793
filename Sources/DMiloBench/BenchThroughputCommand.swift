// `dmilo bench throughput`: jobs per minute of the real daemon for each (jobs, threads) configuration.
//
// For every configuration a fresh spool receives the same N simulated jobs and `dmilod --once` drains it; the wall
// time of that process (start-up and model load included, as on a real box) gives jobs/min, and every job must be
// in done/ afterwards. Configurations run interleaved, round after round, so a load change on a shared machine hits
// them alike; the table shows the median over rounds. This is what the shipped `jobs`/`threads` defaults come from.

import ArgumentParser
import DMiloJobs
import DMiloKernels
import Foundation

struct BenchThroughputCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "throughput",
        abstract: "Jobs/min of `dmilod --once` for each jobs × threads combination on N simulated jobs.")

    @Option(help: "Model: diffusers folder, .safetensors or .gguf.") var model = "Models/fashion-mnist-32/model-q8_0.gguf"
    @Option(help: "Clean image the jobs are simulated from.") var image = "Tests/Data/fashion-mnist-test/test-00100.png"
    @Option(help: "Operator object of the jobs (JSON).") var `operator` = #"{"type":"super_resolution","factor":2}"#
    @Option(help: "Manifest `solver` object (JSON; default: none, the daemon's defaults).") var solver: String?
    @Option(help: "Comma-separated `jobs` values.") var jobs = "1,2"
    @Option(help: "Comma-separated `threads` values (0 = the daemon's automatic choice).") var threads = "1,2"
    @Option(help: "Jobs per configuration and round.") var count = 4
    @Option(help: "Rounds (all configurations once per round); the table shows medians.") var rounds = 1
    @Option(help: "Extra `dmilod` config file (JSON) applied to every run; jobs/threads/spool/model are overridden.")
    var config: String?
    @Option(help: "The dmilod executable (default: beside this dmilo).") var dmilod: String?
    @Option(help: "Scratch folder, new or empty (default: a temporary folder, removed).") var work: String?

    func validate() throws {
        guard count >= 1, rounds >= 1 else { throw ValidationError("--count and --rounds must be at least 1") }
    }

    struct Configuration: Hashable { var jobs: Int, threads: Int }

    func run() throws {
        let js = try Self.list(jobs, option: "--jobs", min: 1), ts = try Self.list(threads, option: "--threads", min: 0)
        let spec = try jsonOption(self.operator, "--operator")
        let solverObject = try solver.map { try jsonOption($0, "--solver") }
        let daemon =
            try dmilod
            ?? URL(fileURLWithPath: ChildProcess.currentExecutable()).deletingLastPathComponent()
            .appendingPathComponent("dmilod").path  // by default the dmilod installed beside this dmilo
        guard FileManager.default.isExecutableFile(atPath: daemon) else { throw CLIError("--dmilod: \(daemon) is not executable") }
        let dir = try scratchFolder(work, name: "throughput")
        defer { if work == nil { try? FileManager.default.removeItem(at: dir) } }
        let modelPath = URL(fileURLWithPath: model).path

        // One template set of jobs, copied into each spool (simulated once: identical inputs for every run).
        let template = dir.appendingPathComponent("template")
        for i in 0..<count {
            _ = try Simulation.run(
                image: image, operatorSpec: spec, noiseSigma: 0.01, seed: UInt64(i),
                manifest: template.appendingPathComponent("job\(i).json"), solver: solverObject)
        }
        let configurations = js.flatMap { j in ts.map { Configuration(jobs: j, threads: $0) } }
        var seconds: [Configuration: [Double]] = [:]
        for round in 1...rounds {
            for c in configurations {
                let spool = dir.appendingPathComponent("spool-r\(round)-j\(c.jobs)-t\(c.threads)")
                try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: template, to: spool.appendingPathComponent("incoming"))
                var args = [
                    "--spool", spool.path, "--model", modelPath, "--jobs", String(c.jobs),
                    "--threads", String(c.threads), "--once",
                ]
                if let config { args += ["--config", URL(fileURLWithPath: config).path] }
                let start = now()
                let r = try ChildProcess.run(daemon, args)
                let wall = now() - start
                guard r.status == 0 else { throw CLIError("dmilod (jobs \(c.jobs), threads \(c.threads)) exited with status \(r.status)") }
                let done = (try? FileManager.default.contentsOfDirectory(atPath: spool.appendingPathComponent("done").path)) ?? []
                guard done.filter({ !$0.hasPrefix(".") }).count == count else {
                    throw CLIError("dmilod (jobs \(c.jobs), threads \(c.threads)) finished \(done.count) of \(count) jobs; see \(spool.path)")
                }
                seconds[c, default: []].append(wall)
                FileHandle.standardError.write(
                    Data(
                        String(
                            format: "round %d: jobs %d threads %d: %.1f s for %d jobs\n",
                            round, c.jobs, c.threads, wall, count
                        ).utf8))
                if work == nil { try? FileManager.default.removeItem(at: spool) }
            }
        }
        print("| jobs | threads | jobs/min (median) | s per job | runs (s) |")
        print("|---|---|---|---|---|")
        for c in configurations {
            let s = seconds[c]!, m = median(s)
            let shown = c.threads == 0 ? "0 (→ \(Threading.automaticThreads(jobs: c.jobs)))" : String(c.threads)
            print(
                String(
                    format: "| %d | %@ | %.2f | %.2f | %@ |", c.jobs, shown, Double(count) * 60 / m, m / Double(count),
                    s.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
        }
        print(
            "\n\(count) jobs per run (\(self.operator), σ = 0.01, solver \(solver ?? "daemon defaults")), \(rounds) round(s) "
                + "interleaved, `dmilod --once` wall time incl. start-up; \(Threading.onlineCores()) online cores, CPU \(Self.cpuModel()); " + "model \(model)")
    }

    static func list(_ s: String, option: String, min: Int) throws -> [Int] {
        let v = try s.split(separator: ",").map { x -> Int in
            guard let n = Int(x), n >= min, n <= 256 else { throw CLIError("\(option): \(x) is not a count ≥ \(min)") }
            return n
        }
        guard !v.isEmpty, Set(v).count == v.count else { throw CLIError("\(option): give each value once") }
        return v
    }

    /// "model name (family F model M)" from /proc/cpuinfo (VMs often show only a brand name; family and model
    /// still tell the generation, e.g. 25/17 = Zen 4).
    static func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        let lines = text.split(separator: "\n")
        func field(_ key: String) -> String? {
            guard let line = lines.first(where: { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) == key }),
                let colon = line.firstIndex(of: ":")
            else { return nil }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return "\(field("model name") ?? "unknown") (family \(field("cpu family") ?? "?") model \(field("model") ?? "?"))"
    }
}
