/// A job failure with a stable machine-readable code, as written to `failed/NAME/error.json`.
///
/// Codes are part of the external contract (docs/INTERFACE.md "Results"); add new ones, never rename.
public struct JobError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable code such as `manifest.invalid` or `file.missing`.
    public var code: String
    /// One readable sentence naming the file and field.
    public var message: String
    /// The manifest field concerned (`measurement`, `solver.steps`, ...), where one applies.
    public var field: String?

    public init(code: String, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { "\(code): \(message)" }

    // Stable codes. The reconstruction layers may throw others from docs/INTERFACE.md directly.
    public static let manifestInvalid = "manifest.invalid"
    public static let measurementShape = "measurement.shape"
    public static let fileMissing = "file.missing"
    public static let fileUnreadable = "file.unreadable"
    public static let operatorUnknown = "operator.unknown"
    public static let budgetExceeded = "budget.exceeded"
    public static let memoryBudget = "memory.budget"
    /// The manifest's `model` names no configured model.
    public static let modelUnknown = "model.unknown"
    /// A configured model's file or folder does not exist.
    public static let modelMissing = "model.missing"
    /// The daemon died (crash, OOM kill, watchdog) while running the job `attempts` times in a row.
    public static let jobCrashed = "job.crashed"
    /// A client cancelled the job (`cancel/NAME`), or deleted its `work/` folder while it ran.
    public static let jobCancelled = "job.cancelled"
    /// The runner failed with an error that is not a `JobError` (a bug, not bad input).
    public static let internalError = "internal.error"

    public static func manifest(_ message: String, field: String? = nil) -> JobError {
        JobError(code: manifestInvalid, message: message, field: field)
    }
}

/// Any error carrying a stable code, such as the operators layer's `OperatorError` (which already has these
/// three properties: `extension OperatorError: CodedError {}` is all it takes). The daemon turns these into
/// `error.json` verbatim instead of reporting `internal.error`.
public protocol CodedError: Error {
    var code: String { get }
    var message: String { get }
    var field: String? { get }
}

extension JobError: CodedError {}

extension JobError {
    /// The `JobError` form of any coded error.
    public init(_ coded: any CodedError) {
        self.init(code: coded.code, message: coded.message, field: coded.field)
    }
}

/// Thrown by a runner that stopped because ``JobControl/isCancelled`` became true (graceful daemon stop).
/// The daemon puts the job back to `incoming/`; it is not a failure of the job.
public struct JobCancelled: Error, Sendable {
    public init() {}
}
