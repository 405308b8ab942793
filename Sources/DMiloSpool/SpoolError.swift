/// Why the spool cannot be used (the daemon exits non-zero with this one line).
public struct SpoolError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
