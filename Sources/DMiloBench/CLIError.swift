// The error every `dmilo` subcommand (the benchmarks and the product commands) throws for bad input.

/// A one-line error for bad input; exits non-zero with the message (no stack trace, no usage dump).
public struct CLIError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
