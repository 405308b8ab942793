// `dmilo bench …`: benchmark group. Add further benchmarks as subcommands here (one file each).

import ArgumentParser

public struct BenchCommand: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print tables (speed, memory, quality), compared with PyTorch where available.",
        subcommands: [
            BenchUNetCommand.self,
            BenchQualityCommand.self,
            BenchMemoryCommand.self,
            BenchThroughputCommand.self,
            BenchUncertaintyCommand.self,
        ]
    )
}
