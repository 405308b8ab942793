import DMiloImage
import DMiloSolvers

/// Bounds on every solver size a manifest (or the daemon config) can set, checked before anything is allocated
/// or planned. The manifest reader only knows "positive integer"; what is sensible depends on the model's schedule.
public enum InputLimits {
    /// Outer / inner iteration counts above this are refused: the UNet budget caps the work long before, and the
    /// solvers keep per-iteration histories.
    public static let maxIterations = 100_000
    /// Most posterior chains per job (`solver.samples`).
    public static let maxSamples = 64

    /// Throws `manifest.invalid` (naming the field) for solver sizes the model or the solvers cannot honour.
    /// `trainSteps` is the model's schedule length: a DDIM grid of more steps than that has zero spacing.
    public static func check(_ p: SolverParameters, trainSteps: Int, file: String) throws {
        func limit(_ value: Int, _ field: String, _ max: Int, _ why: String) throws {
            guard (1...Swift.max(1, max)).contains(value) else {
                throw JobError.manifest("\(file): `\(field)` = \(value) is outside 1...\(max) (\(why))", field: field)
            }
        }
        let steps = "the model's schedule has \(trainSteps) timesteps"
        try limit(p.steps, "solver.steps", trainSteps, steps)
        if p.method == .dps { try limit(p.dpsSteps, "solver.inner", trainSteps, steps) }
        try limit(p.outer, "solver.outer", maxIterations, "the solvers keep one record per iteration")
        try limit(p.inner, "solver.inner", maxIterations, "the solvers keep one record per iteration")
        try limit(p.layerSpan, "solver.layer_span", trainSteps, steps)
        try limit(p.samples, "solver.samples", maxSamples, "each chain keeps its images in memory and costs its own UNet evaluations")
        guard p.budget >= 1 else {
            throw JobError.manifest("\(file): `solver.budget` must be >= 1", field: "solver.budget")
        }
    }

    /// PNG limits for a job's images: no measurement, mask or truth is larger than the model's image (every
    /// operator maps (C,H,W) to at most H×W pixels per channel), so a 98 KB file that claims 8192×8192 pixels is
    /// refused from its header (`image.too_large`) instead of costing hundreds of MB to decode first.
    public static func png(forImage shape: [Int]) -> PNGLimits {
        let h = shape.count >= 2 ? shape[shape.count - 2] : 1
        let w = shape.last ?? 1
        let (pixels, o) = h.multipliedReportingOverflow(by: w)
        var l = JobInputs.pngLimits
        l.maxWidth = min(l.maxWidth, max(1, w))
        l.maxHeight = min(l.maxHeight, max(1, h))
        l.maxPixels = o ? l.maxPixels : min(l.maxPixels, max(1, pixels))
        return l
    }
}
