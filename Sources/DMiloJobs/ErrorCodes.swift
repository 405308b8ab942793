/// The one list of codes that may appear in `failed/NAME/error.json` (documented in docs/error-codes.md; a test
/// keeps the two identical). The daemon publishes any other code as `internal.error`, keeping the original code
/// in the message, so a layer that invents a code cannot widen the external contract by accident.
public enum ErrorCodes {
    /// Code → when it happens (the text of docs/error-codes.md's table).
    public static let documented: [(code: String, meaning: String)] = [
        (
            "manifest.invalid",
            "the manifest is not valid JSON, misses a required key, has an unknown key or a value of the wrong type or range, or its file name is not a valid job name (including names that are not UTF-8)"
        ),
        ("file.missing", "a file the manifest names does not exist (after `missing_file_grace_seconds` in the daemon)"),
        ("file.unreadable", "a file the manifest names is a symbolic link, a hard link (more than one name), not a regular file, over `max_file_mb`, or not a readable PNG / NPY file"),
        ("file.invalid", "a mask, kernel or matrix file has the wrong shape or unusable values"),
        (
            "image.too_large",
            "a PNG's header states more pixels than allowed, checked before decoding: for a mask or truth, more than the model's image; for a measurement, more than 8192×8192 or 16 M pixels (a smaller measurement of the wrong size is `measurement.shape`)"
        ),
        (
            "measurement.shape",
            "the measurement (or `image_shape`) does not fit the operator on this model, including an RGB measurement for a gray model (or the reverse) without `color`; the message names the model's image shape, the measurement shape the operator expects and the shape given"
        ),
        ("measurement.nonfinite", "the measurement holds NaN or infinite values"),
        ("truth.shape", "the `truth` image does not have the model's image shape"),
        ("operator.unknown", "`operator.type` is not one of the supported operators"),
        ("operator.nonlinear", "the chosen method needs a linear operator"),
        ("solver.invalid", "the solver cannot be used with this operator (e.g. the classical baseline on a nonlinear operator)"),
        ("budget.exceeded", "the method needs more UNet evaluations than `solver.budget` / `max_budget` allow"),
        ("memory.budget", "the solver's planned memory exceeds the per-job memory budget (`memory_budget_mb`, or the default derived from the machine)"),
        ("model.missing", "the model file is missing"),
        ("model.unknown", "the manifest's `model` names no configured model"),
        ("result.nonfinite", "the reconstruction or its residual is NaN or infinite (e.g. `noise_sigma: 1e308`, measurements near the float range, a model with NaN weights)"),
        ("output.unwritable", "the results could not be written for a reason other than a full disk (a full disk leaves the job queued instead)"),
        ("job.cancelled", "a client cancelled the job (`cancel/NAME`), or deleted its folder in `work/` while it ran (then the inputs are gone)"),
        ("job.crashed", "the job's worker process died (crash, out-of-memory kill, watchdog) `attempts` times in a row"),
        ("internal.error", "a bug: an error without a documented code (its message says which)"),
    ]

    public static let all: Set<String> = Set(documented.map(\.code))

    /// The error as it may be published: documented codes unchanged, anything else as `internal.error`.
    public static func publishable(_ e: JobError) -> JobError {
        if all.contains(e.code) { return e }
        return JobError(code: JobError.internalError, message: "\(e.message) (undocumented code \(e.code))", field: e.field)
    }
}
