// UncertaintyMap: a per-pixel standard deviation as a colour picture (done/NAME/uncertainty.png and the montage's
// uncertainty panel). Colours follow a viridis-like ramp (dark blue = 0 → yellow = the largest σ), which stays
// ordered when printed in gray; the PNG carries a vertical scale bar labelled with 0 and the largest σ so the
// colours can be read back as values.

import DMiloKernels

public enum UncertaintyMap {
    /// Five anchors of matplotlib's viridis (sRGB, 0…1) at 0, ¼, ½, ¾, 1; linear in between.
    static let anchors: [(Float, Float, Float)] = [
        (0.267, 0.005, 0.329), (0.229, 0.322, 0.546), (0.128, 0.567, 0.551), (0.369, 0.789, 0.383), (0.993, 0.906, 0.144),
    ]

    /// RGB of u ∈ [0, 1] on the ramp.
    static func color(_ u: Float) -> (Float, Float, Float) {
        let v = min(max(u.isFinite ? u : 0, 0), 1) * Float(anchors.count - 1)
        let i = min(Int(v), anchors.count - 2), f = v - Float(i)
        let (a, b) = (anchors[i], anchors[i + 1])
        return (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1), a.2 + f * (b.2 - a.2))
    }

    /// The colour picture of σ (C, H, W) as a model-unit RGB tensor (3, H, W) (channels are averaged: one σ per
    /// pixel), scaled so that `maxSigma` (default: the largest σ) is the top of the ramp.
    public static func colorize(_ sigma: Tensor, maxSigma: Float? = nil) -> Tensor {
        let (c, h, w) = (sigma.shape[0], sigma.shape[1], sigma.shape[2])
        let plane = h * w
        let top = max(maxSigma ?? largest(sigma), 1e-12)
        let out = Tensor(shape: [3, h, w], zeroed: false)
        for p in 0..<plane {
            var s: Float = 0
            for k in 0..<c { s += sigma[k * plane + p] }
            let (r, g, b) = color(s / Float(c) / top)
            out[p] = 2 * r - 1; out[plane + p] = 2 * g - 1; out[2 * plane + p] = 2 * b - 1
        }
        return out
    }

    /// The largest per-pixel σ (averaged over channels, as `colorize` shows it).
    public static func largest(_ sigma: Tensor) -> Float {
        let c = sigma.shape[0], plane = sigma.count / max(c, 1)
        var m: Float = 0
        for p in 0..<plane {
            var s: Float = 0
            for k in 0..<c { s += sigma[k * plane + p] }
            m = max(m, s / Float(c))
        }
        return m
    }

    /// uncertainty.png: the map upscaled by `scale`, a scale bar to its right (bottom = 0, top = the largest σ),
    /// labels "0" and that σ in model units, and "SIGMA" above.
    public static func render(sigma: Tensor, scale: Int) throws -> PNGImage {
        guard sigma.shape.count == 3, sigma.shape[0] >= 1 else { throw ImageShapeError("UncertaintyMap: σ shape \(sigma.shape) is not (C,H,W)") }
        let top = largest(sigma)
        let map = colorize(sigma, maxSigma: top)
        let (h, w) = (sigma.shape[1], sigma.shape[2])
        let f = max(1, scale), ts = max(1, h * f / 96), pad = 4 * ts
        let label = String(format3(top))
        let barWidth = 4 * BitmapFont.glyphWidth * ts / 2
        let strip = (BitmapFont.glyphHeight + 4) * ts
        let width = pad + w * f + pad + barWidth + pad + BitmapFont.width(of: label, scale: ts) + pad
        let height = pad + strip + h * f + pad
        var canvas = RasterCanvas(width: width, height: height, channels: 3, fill: 255)
        canvas.draw("SIGMA", x: pad, y: pad, scale: ts, maxWidth: width - pad, ink: 0)
        let top0 = pad + strip
        canvas.paint(map, x: pad, y: top0, factor: f)
        let barX = pad + w * f + pad
        let ramp = Tensor(shape: [3, h * f, 1], zeroed: false)
        for r in 0..<(h * f) {
            let (cr, cg, cb) = color(1 - Float(r) / Float(max(h * f - 1, 1)))
            ramp[r] = 2 * cr - 1; ramp[h * f + r] = 2 * cg - 1; ramp[2 * h * f + r] = 2 * cb - 1
        }
        for dx in 0..<barWidth { canvas.paint(ramp, x: barX + dx, y: top0, factor: 1) }
        let textX = barX + barWidth + pad
        canvas.draw(label, x: textX, y: top0, scale: ts, maxWidth: width - textX, ink: 0)
        canvas.draw("0", x: textX, y: top0 + h * f - BitmapFont.glyphHeight * ts, scale: ts, maxWidth: width - textX, ink: 0)
        return try canvas.image()
    }

    /// σ with three significant decimals, without Foundation's formatter ("0.123").
    static func format3(_ v: Float) -> String {
        let milli = Int((Double(v) * 1000).rounded())
        let frac = String(milli % 1000)
        return "\(milli / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }
}
