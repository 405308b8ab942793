// Group normalisation (PyTorch `nn.GroupNorm`): per (batch, group) mean and *biased* variance over
// (channels/groups)·spatial values, y = (x − μ)/sqrt(σ² + eps) · γ[c] + β[c]. Forward saves μ and rstd for the VJP.
//
// VJP with x̂ = (x − μ)·rstd, g = dOut·γ, averages ⟨·⟩ over the group:
//   dx = rstd · (g − ⟨g⟩ − x̂·⟨g·x̂⟩)

/// GroupNorm kernels; x, out, dOut, dx are [B, C, spatial]; mean and rstd are [B·groups].
/// `groups` must divide `channels` (as PyTorch requires); model loading validates that, the kernels do not.
public enum GroupNorm {
    /// Normalises `x` into `out` (may alias x) and saves per-group `mean` and `rstd`. γ/β nil mean affine = False.
    public static func forward(
        batch: Int, channels: Int, spatial: Int, groups: Int, eps: Float,
        x: UnsafePointer<Float>, gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>
    ) {
        let timer = OpProfile.begin(.norm); defer { OpProfile.end(timer) }
        let cpg = channels / groups, n = cpg * spatial
        let outP = SharedPointer(out), meanP = SharedPointer(mean), rstdP = SharedPointer(rstd)
        let inPlace = UnsafePointer(out) == x
        Parallel.forEach(batch * groups, work: batch * channels * spatial) { bg in
            let g = bg % groups
            let xg = x + bg * n, og = outP.p + bg * n
            // Two passes (mean, then squared deviations) with Double totals: statistics of up to 10^5 values
            // with |mean| ≫ std must not lose digits to E[x²] − E[x]² cancellation.
            let mu = blockSum(xg, n) / Double(n)
            let v = blockSumSquaredDeviation(xg, n, Float(mu))
            let r = 1 / (v / Double(n) + Double(eps)).squareRoot()
            meanP.p[bg] = Float(mu); rstdP.p[bg] = Float(r)
            let m = Float(mu), rs = Float(r)
            for cl in 0..<cpg {
                let c = g * cpg + cl
                let a = rs * (gamma?[c] ?? 1), b = (beta?[c] ?? 0) - m * a
                let xc = xg + cl * spatial, oc = og + cl * spatial
                var j = 0
                if inPlace {  // one pointer: LLVM's overlap check would send identical pointers to a scalar loop
                    while j < spatial { oc[j] = oc[j] * a + b; j &+= 1 }
                } else {
                    while j < spatial { oc[j] = xc[j] * a + b; j &+= 1 }
                }
            }
        }
    }

    /// dx = ∂⟨dOut, GroupNorm(x)⟩/∂x using the `mean`/`rstd` saved by `forward`. Overwrites `dx` (may alias dOut).
    public static func backwardInput(
        batch: Int, channels: Int, spatial: Int, groups: Int, x: UnsafePointer<Float>,
        gamma: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
        rstd: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>
    ) {
        let timer = OpProfile.begin(.norm); defer { OpProfile.end(timer) }
        let cpg = channels / groups, n = cpg * spatial
        let dxP = SharedPointer(dx), inPlace = UnsafePointer(dx) == dOut
        Parallel.forEach(batch * groups, work: batch * channels * spatial) { bg in
            let g = bg % groups
            let xg = x + bg * n, dg = dOut + bg * n, dxg = dxP.p + bg * n
            let m = mean[bg], rs = rstd[bg]
            // ⟨g⟩ and ⟨g·x̂⟩ in Double; x̂·rstd⁻¹ = x − μ so the rstd factor is applied once at the end.
            var sg: Double = 0, sgx: Double = 0
            for cl in 0..<cpg {
                let gm = Double(gamma?[g * cpg + cl] ?? 1)
                let (a, b) = blockSumAndCenteredDot(dg + cl * spatial, xg + cl * spatial, spatial, m)
                sg += gm * a; sgx += gm * b
            }
            let meanG = Float(sg / Double(n)), meanGX = Float(sgx / Double(n)) * rs  // ⟨g·x̂⟩
            for cl in 0..<cpg {
                let gm = gamma?[g * cpg + cl] ?? 1
                let xc = xg + cl * spatial, dc = dg + cl * spatial, oc = dxg + cl * spatial
                let k1 = rs * gm, k2 = rs * rs * meanGX, k0 = rs * meanG
                var j = 0
                // rstd·(γ·dOut − ⟨g⟩ − (x − μ)·rstd·⟨g·x̂⟩); in place through one pointer (see forward)
                if inPlace {
                    while j < spatial { oc[j] = k1 * oc[j] - k0 - (xc[j] - m) * k2; j &+= 1 }
                } else {
                    while j < spatial { oc[j] = k1 * dc[j] - k0 - (xc[j] - m) * k2; j &+= 1 }
                }
            }
        }
    }
}
