import DMiloKernels

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// Seeded camera-shake kernels, in the spirit of LeviBorodenko/motionblur (used by the official code, [MB]) but
/// our own construction, drawn from SeededRandom(seed: kernelSeed, stream: "motion-kernel") so that a seed gives
/// the same kernel on every machine:
///
/// 1. Path length L = (size − 2) · (0.5 + intensity) · (0.6 + 0.4·u) kernel pixels.
/// 2. Random walk from the origin with heading θ₀ ~ U[0, 2π). Each step has length L·(1 − u^(1/30)) (a
///    Beta(1, 30) draw, mean L/31, so about 30 steps) and turns by intensity·(π/3)·(u₁ − u₂) (triangular);
///    with probability 0.15·intensity a sharp jerk adds ±π·(0.4 + 0.6u). The walk stops once its length reaches L.
///    intensity 0 gives a short straight streak, 1 a long wiggly one.
/// 3. The path is shifted so its length-weighted centroid is the kernel centre (the blur does not translate the
///    image), and shrunk if needed so every point stays ≥ 1 pixel inside the border.
/// 4. It is rasterised anti-aliased on a 4×-supersampled canvas: each segment is sampled every ≤ 1/8 pixel and each
///    sample splats its share of the segment length bilinearly, so ink is proportional to path length.
/// 5. The canvas is summed over 4×4 blocks to size×size and normalised to sum 1 (all entries ≥ 0).
public enum MotionKernel {
    /// A (size, size) kernel. size: odd, 1 … 255 (1 gives the identity); intensity ∈ [0, 1].
    public static func generate(size: Int, intensity: Double, seed: UInt64) throws -> Tensor {
        guard size >= 1, size <= 255, size % 2 == 1 else {
            throw OperatorError.invalid("operator.size", "motion_blur size must be an odd integer in 1...255, got \(size)")
        }
        guard intensity.isFinite, intensity >= 0, intensity <= 1 else {
            throw OperatorError.invalid("operator.intensity", "motion_blur intensity must be in [0, 1], got \(intensity)")
        }
        if size == 1 { return Tensor(shape: [1, 1], values: [1]) }
        var rng = SeededRandom(seed: seed, stream: "motion-kernel")

        // 1–2: the camera path (kernel-pixel units, origin = start).
        let length = Double(size - 2) * (0.5 + intensity) * (0.6 + 0.4 * rng.uniform())
        var theta = 2 * Double.pi * rng.uniform()
        var xs = [0.0], ys = [0.0]
        var walked = 0.0
        while walked < length && xs.count < 4096 {
            let step = min(length * (1 - pow(rng.uniform(), 1.0 / 30)), length - walked)
            var turn = intensity * (Double.pi / 3) * (rng.uniform() - rng.uniform())
            if rng.uniform() < 0.15 * intensity {
                turn += (rng.uniform() < 0.5 ? -1 : 1) * Double.pi * (0.4 + 0.6 * rng.uniform())
            }
            theta += turn
            xs.append(xs[xs.count - 1] + step * cos(theta))
            ys.append(ys[ys.count - 1] + step * sin(theta))
            walked += step
        }

        // 3: centre on the length-weighted centroid, keep inside the border.
        var total = 0.0, cx = 0.0, cy = 0.0
        for k in 1..<xs.count {
            let len = hypot(xs[k] - xs[k - 1], ys[k] - ys[k - 1])
            total += len
            cx += len * (xs[k] + xs[k - 1]) / 2
            cy += len * (ys[k] + ys[k - 1]) / 2
        }
        if total > 0 { cx /= total; cy /= total } else { cx = xs[0]; cy = ys[0] }
        var reach = 0.0
        for k in 0..<xs.count {
            xs[k] -= cx; ys[k] -= cy
            reach = max(reach, abs(xs[k]), abs(ys[k]))
        }
        let limit = Double(size) / 2 - 1
        if reach > limit {
            let shrink = limit / reach
            for k in 0..<xs.count { xs[k] *= shrink; ys[k] *= shrink }
        }

        // 4: anti-aliased rasterisation on the supersampled canvas.
        let s = 4, n = size * s
        var canvas = [Double](repeating: 0, count: n * n)
        func splat(_ x: Double, _ y: Double, _ w: Double) {
            // canvas pixel (r, c) covers [c, c+1) × [r, r+1) in supersampled units; its centre is c + 0.5
            let qx = (Double(size) / 2 + x) * Double(s) - 0.5, qy = (Double(size) / 2 + y) * Double(s) - 0.5
            let c0 = Int(qx.rounded(.down)), r0 = Int(qy.rounded(.down))
            let fx = qx - Double(c0), fy = qy - Double(r0)
            for (dr, wr) in [(0, 1 - fy), (1, fy)] {
                for (dc, wc) in [(0, 1 - fx), (1, fx)] {
                    let r = min(max(r0 + dr, 0), n - 1), c = min(max(c0 + dc, 0), n - 1)
                    canvas[r * n + c] += w * wr * wc
                }
            }
        }
        if total > 0 {
            for k in 1..<xs.count {
                let len = hypot(xs[k] - xs[k - 1], ys[k] - ys[k - 1])
                if len == 0 { continue }
                let m = max(1, Int((len * Double(2 * s)).rounded(.up)))
                for i in 0..<m {
                    let t = (Double(i) + 0.5) / Double(m)
                    splat(xs[k - 1] + t * (xs[k] - xs[k - 1]), ys[k - 1] + t * (ys[k] - ys[k - 1]), len / Double(m))
                }
            }
        } else {
            splat(0, 0, 1)
        }

        // 5: downsample by block sums, normalise.
        var kernel = [Double](repeating: 0, count: size * size)
        for r in 0..<n { for c in 0..<n { kernel[(r / s) * size + c / s] += canvas[r * n + c] } }
        let sum = kernel.reduce(0, +)
        return Tensor(shape: [size, size], values: kernel.map { Float($0 / sum) })
    }
}
