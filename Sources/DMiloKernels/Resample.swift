// Resolution changes of the UNet: nearest 2× upsampling (diffusers Upsample2D, `interpolate(scale_factor=2,
// mode="nearest")`) and 2×2 average pooling (Downsample2D with use_conv=False, `avg_pool2d(2, 2)`).
// Both are linear; their VJPs are the adjoints (sum over the 2×2 copies, spread a quarter to each input). So the
// four kernels are two loops: a 2×2 block sum and a 2×2 spread, each times a scale (1 or ¼; × 1 is exact).

/// Nearest-neighbour 2× upsampling, [B, C, h, w] → [B, C, 2h, 2w].
public enum Upsample2x {
    /// out[b, c, 2i+di, 2j+dj] = x[b, c, i, j]. Overwrites `out`.
    public static func forward(
        batch: Int, channels: Int, h: Int, w: Int, x: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>
    ) {
        spread2x2(planes: batch * channels, h: h, w: w, outH: 2 * h, outW: 2 * w, scale: 1, x, out)
    }

    /// dx[b, c, i, j] = Σ of the four dOut copies. `h`, `w` are the INPUT size. Overwrites `dx`.
    public static func backwardInput(
        batch: Int, channels: Int, h: Int, w: Int, dOut: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>
    ) {
        blockSum2x2(planes: batch * channels, h: 2 * h, w: 2 * w, outH: h, outW: w, scale: 1, dOut, dx)
    }
}

/// 2×2 average pooling with stride 2, [B, C, h, w] → [B, C, h/2, w/2] (odd trailing row/column dropped, as PyTorch).
public enum AvgPool2x {
    /// out[b, c, i, j] = mean of x[b, c, 2i..2i+1, 2j..2j+1]. Overwrites `out`.
    public static func forward(
        batch: Int, channels: Int, h: Int, w: Int, x: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>
    ) {
        blockSum2x2(planes: batch * channels, h: h, w: w, outH: h / 2, outW: w / 2, scale: 0.25, x, out)
    }

    /// dx[b, c, y, x] = dOut[b, c, y/2, x/2] / 4 (0 for a dropped odd row/column). `h`, `w` are the INPUT size.
    public static func backwardInput(
        batch: Int, channels: Int, h: Int, w: Int, dOut: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>
    ) {
        spread2x2(planes: batch * channels, h: h / 2, w: w / 2, outH: h, outW: w, scale: 0.25, dOut, dx)
    }
}

/// out[p, i, j] = scale · Σ of x[p, 2i..2i+1, 2j..2j+1] over `planes` planes of h×w → outH×outW (outH = h/2).
private func blockSum2x2(
    planes: Int, h: Int, w: Int, outH: Int, outW: Int, scale: Float, _ x: UnsafePointer<Float>,
    _ out: UnsafeMutablePointer<Float>
) {
    let outP = SharedPointer(out)
    Parallel.forEach(planes, work: planes * h * w) { p in
        let xp = x + p * h * w, op = outP.p + p * outH * outW
        for i in 0..<outH {
            let r0 = xp + 2 * i * w, r1 = r0 + w, dst = op + i * outW
            var j = 0
            while j < outW {
                dst[j] = scale * ((r0[2 &* j] + r0[2 &* j &+ 1]) + (r1[2 &* j] + r1[2 &* j &+ 1]))
                j &+= 1
            }
        }
    }
}

/// out[p, 2i+a, 2j+b] = scale · x[p, i, j] over `planes` planes of h×w → outH×outW (outH = 2h, or 2h + 1 with the
/// odd trailing row zeroed; columns likewise).
private func spread2x2(
    planes: Int, h: Int, w: Int, outH: Int, outW: Int, scale: Float, _ x: UnsafePointer<Float>,
    _ out: UnsafeMutablePointer<Float>
) {
    let oddEdge = outH != 2 * h || outW != 2 * w, outP = SharedPointer(out)
    Parallel.forEach(planes, work: planes * outH * outW) { p in
        let xp = x + p * h * w, op = outP.p + p * outH * outW
        if oddEdge { op.update(repeating: 0, count: outH * outW) }
        for i in 0..<h {
            let src = xp + i * w, r0 = op + 2 * i * outW, r1 = r0 + outW
            var j = 0
            while j < w { let v = scale * src[j]; r0[2 &* j] = v; r0[2 &* j &+ 1] = v; j &+= 1 }
            r1.update(from: r0, count: 2 * w)
        }
    }
}
