import ArgumentParser

/// The spool and job name that `dmilo wait` and `dmilo cancel` act on.
struct SpoolJobArguments: ParsableArguments {
    @Option(help: "The spool folder.") var spool: String
    @Argument(help: "The job name.") var name: String
}
