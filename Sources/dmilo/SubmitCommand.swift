// `dmilo submit`: queue a job in a spool the way the daemon expects it (data first, manifest last).

import ArgumentParser
import DMiloSpool

struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Queue a job: check its manifest, copy it and the files it names into the spool's incoming/.",
        discussion: """
            Prints the job name. Refused (exit 1) when the manifest is invalid, a file it names is missing, or a job
            of that name is queued, running or finished: give another name with --name.
            """)

    @Option(help: "The spool folder.") var spool: String
    @Argument(help: "The job's manifest (JOB.json); the files it names lie beside it.") var manifest: String
    @Option(help: "Job name (default: the manifest's file name without .json).") var name: String?

    func run() throws {
        do {
            print(try SpoolClient(root: spool).submit(manifest: manifest, name: name))
        } catch let e as SpoolClient.Refusal {
            throw CLIError(e.description)
        }
    }
}
