// `dmilo status`: the jobs of a spool, queued, running (with progress), done and failed.

import ArgumentParser
import DMiloJobs
import DMiloSpool
import Foundation

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List a spool's queued, running (with progress), done and failed jobs.")

    @Option(help: "The spool folder.") var spool: String
    @Flag(help: "One JSON object: {queued, running, done, failed}, each a list of {job, …}.") var json = false

    func run() throws {
        let s: SpoolClient.Status
        do { s = try SpoolClient(root: spool).status() } catch let e as SpoolClient.Refusal { throw CLIError(e.description) }
        if json {
            let data = try JSONSerialization.data(withJSONObject: s.jsonObject, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("queued (\(s.queued.count))")
        for j in s.queued { print("  \(j)") }
        print("running (\(s.running.count))")
        for r in s.running { print("  \(r.job)  \(r.progress.map { "\(Int($0.fraction * 100))%  \($0.summary)" } ?? "starting")") }
        print("done (\(s.done.count))")
        for j in s.done { print("  \(j)") }
        print("failed (\(s.failed.count))")
        for f in s.failed { print("  \(f.job)  \(f.error ?? "-")") }
    }
}
