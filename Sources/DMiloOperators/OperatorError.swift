// Errors raised while building an operator from user input (manifest fields, loaded files).
// They carry the stable codes of docs/INTERFACE.md "Errors" so the jobs layer can copy them verbatim.

/// A bad operator specification or operator file. `code` is stable (written to `error.json`), `message` is one
/// readable sentence, `field` is the manifest path it concerns (e.g. `operator.factor`).
///
/// Codes produced here:
/// - `operator.unknown`: `operator.type` names no operator.
/// - `manifest.invalid`: an operator field is unknown, missing, of the wrong JSON type, out of range, or
///   incompatible with the image shape.
/// - `file.invalid`: a loaded mask / kernel / matrix has the wrong shape or unusable values.
/// - `memory.budget`: a compressed-sensing matrix would exceed the allowed size.
/// Errors thrown by the caller's `loadArray` closure (`file.missing`, `file.unreadable`, ...) pass through unchanged.
public struct OperatorError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: String
    public let message: String
    public let field: String?

    public init(code: String, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String {
        field.map { "\(code) [\($0)]: \(message)" } ?? "\(code): \(message)"
    }

    static func invalid(_ field: String, _ message: String) -> OperatorError {
        OperatorError(code: "manifest.invalid", message: message, field: field)
    }

    static func file(_ field: String, _ message: String) -> OperatorError {
        OperatorError(code: "file.invalid", message: message, field: field)
    }
}

/// Largest image accepted (elements C·H·W): keeps index arithmetic and BLAS's 32-bit sizes safe.
let maxImageElements = 1 << 30

/// Checks that `shape` is a usable image shape [C, H, W] (all positive, C·H·W ≤ 2^30).
func validateImageShape(_ shape: [Int]) throws {
    guard shape.count == 3, shape.allSatisfy({ $0 >= 1 && $0 <= maxImageElements }),
        shape[0] * shape[1] <= maxImageElements, shape[0] * shape[1] * shape[2] <= maxImageElements
    else {
        throw OperatorError.invalid(
            "image_shape",
            "image shape must be [C, H, W] with positive sizes and at most 2^30 elements, got \(shape)")
    }
}
