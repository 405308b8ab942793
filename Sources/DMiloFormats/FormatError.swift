// One error type for every on-disk format, so callers can report "file: field: problem" uniformly.

/// A malformed or unsupported file. `description` is one readable sentence naming the file (and field/tensor).
public struct FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Path of the offending file.
    public let file: String
    /// Field, tensor or header key the problem concerns (nil when it concerns the whole file).
    public let field: String?
    /// What is wrong.
    public let message: String

    public init(file: String, field: String? = nil, _ message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String {
        if let field { return "\(file): \(field): \(message)" }
        return "\(file): \(message)"
    }
}
