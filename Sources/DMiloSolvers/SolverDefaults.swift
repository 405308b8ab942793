/// Per-operator defaults, adapted from the official hyperparameters (algorithms.md §5) to the bundled 32×32 model.
///
/// Kept from the official code: N = 3 DDIM steps, λ = 0.1, lr_ν = 1e-3, the 1e-4 z-prior, Adam, the PGD forms
/// (squared single step for masks/resizers/CS, un-squared repeated steps for blurs), lr_z per task.
/// Changed for a CPU budget: inner iterations (official 200–1000) and outer iterations are smaller; the squared-form
/// lr_x follows the 0.5/‖A‖² rule the official values obey; the un-squared lr_x is rescaled so the per-pixel move
/// matches the official 2/√(3·256²) at 32×32 (§9).
public enum SolverDefaults {
    public static func parameters(method: SolverMethod, operatorType: String) -> SolverParameters {
        var p = SolverParameters(method: method)
        let blur = ["blur", "gaussian_blur", "motion_blur"].contains(operatorType)
        switch method {
        case .dmiloPGD, .dmilo:
            p.steps = 3
            p.lambda = 0.1
            p.lrNu = 1e-3
            p.zPrior = 1e-4
            switch operatorType {
            case "inpainting": p.lrZ = 2e-2; p.outer = 5; p.inner = 100
            case "super_resolution": p.lrZ = 1e-2; p.outer = method == .dmiloPGD ? 8 : 5; p.inner = 60
            case _ where blur:
                p.lrZ = method == .dmiloPGD ? 2e-2 : 8e-3; p.outer = 5; p.inner = 100
                // official: 1000 steps of lr 2 at 3·256² pixels, i.e. ≈ 0.0045 per pixel per step; 0.15 at 32² keeps that.
                p.pgdForm = .unsquared; p.pgdSteps = 300; p.lrX = 0.15
            case "hdr": p.lrZ = 2e-2; p.outer = 5; p.inner = 100; p.pgdForm = .unsquared; p.pgdSteps = 100; p.lrX = 0.05
            default: p.lrZ = 1e-2; p.outer = 5; p.inner = 100     // denoise, compressed_sensing
            }
        case .dmplug:
            p.steps = 3; p.lrZ = 1e-2; p.inner = 500; p.outer = 10
        case .dps:
            p.dpsSteps = 500; p.dpsZeta = 1.0
        case .baseline:
            break
        }
        return p
    }
}
