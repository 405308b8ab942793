// `dmilo cancel`: ask the daemon to cancel a queued or running job (cancel/NAME).

import ArgumentParser
import DMiloSpool
import Foundation

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a queued or running job: creates cancel/NAME; the job ends in failed/NAME (job.cancelled).",
        discussion: "Returns at once; `dmilo wait` tells when the job has stopped. A finished job is refused (exit 1).")

    @OptionGroup var job: SpoolJobArguments

    func run() throws {
        let state: SpoolClient.JobState?
        do { state = try SpoolClient(root: job.spool).cancel(job.name) } catch let e as SpoolClient.Refusal { throw CLIError(e.description) }
        if state == nil {
            FileHandle.standardError.write(
                Data(
                    ("dmilo cancel: no job \(job.name) is queued or running now; the request "
                        + "stays for 60 s in case it arrives, then the daemon removes it\n").utf8))
        }
    }
}
