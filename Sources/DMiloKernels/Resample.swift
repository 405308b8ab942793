// Resolution changes of the UNet: nearest 2× upsampling (diffusers Upsample2D, `interpolate(scale_factor=2,
// mode="nearest")`) and 2×2 average pooling (Downsample2D with use_conv=False, `avg_pool2d(2, 2)`).
// Both are linear; their VJPs are the adjoints (sum over the 2×2 copies, spread a quarter to each input).

/// Nearest-neighbour 2× upsampling, [B, C, h, w] → [B, C, 2h, 2w].
public enum Upsample2x {
    /// out[b, c, 2i+di, 2j+dj] = x[b, c, i, j]. Overwrites `out`.
    public static func forward(batch: Int, channels: Int, h: Int, w: Int, x: UnsafePointer<Float>,
                               out: UnsafeMutablePointer<Float>) {
        let outP = SharedPointer(out), w2 = 2 * w
        Parallel.forEach(batch * channels, work: 4 * batch * channels * h * w) { p in
            let xp = x + p * h * w, op = outP.p + p * 4 * h * w
            for i in 0..<h {
                let src = xp + i * w, r0 = op + 2 * i * w2, r1 = r0 + w2
                var j = 0
                while j < w { let v = src[j]; r0[2 &* j] = v; r0[2 &* j &+ 1] = v; j &+= 1 }
                r1.update(from: r0, count: w2)
            }
        }
    }

    /// dx[b, c, i, j] = Σ of the four dOut copies. `h`, `w` are the INPUT size. Overwrites `dx`.
    public static func backwardInput(batch: Int, channels: Int, h: Int, w: Int, dOut: UnsafePointer<Float>,
                                     dx: UnsafeMutablePointer<Float>) {
        let dxP = SharedPointer(dx), w2 = 2 * w
        Parallel.forEach(batch * channels, work: 4 * batch * channels * h * w) { p in
            let gp = dOut + p * 4 * h * w, dp = dxP.p + p * h * w
            for i in 0..<h {
                let r0 = gp + 2 * i * w2, r1 = r0 + w2, dst = dp + i * w
                var j = 0
                while j < w {
                    dst[j] = (r0[2 &* j] + r0[2 &* j &+ 1]) + (r1[2 &* j] + r1[2 &* j &+ 1])
                    j &+= 1
                }
            }
        }
    }
}

/// 2×2 average pooling with stride 2, [B, C, h, w] → [B, C, h/2, w/2] (odd trailing row/column dropped, as PyTorch).
public enum AvgPool2x {
    /// out[b, c, i, j] = mean of x[b, c, 2i..2i+1, 2j..2j+1]. Overwrites `out`.
    public static func forward(batch: Int, channels: Int, h: Int, w: Int, x: UnsafePointer<Float>,
                               out: UnsafeMutablePointer<Float>) {
        let ho = h / 2, wo = w / 2
        let outP = SharedPointer(out)
        Parallel.forEach(batch * channels, work: batch * channels * h * w) { p in
            let xp = x + p * h * w, op = outP.p + p * ho * wo
            for i in 0..<ho {
                let r0 = xp + 2 * i * w, r1 = r0 + w, dst = op + i * wo
                var j = 0
                while j < wo {
                    dst[j] = 0.25 * ((r0[2 &* j] + r0[2 &* j &+ 1]) + (r1[2 &* j] + r1[2 &* j &+ 1]))
                    j &+= 1
                }
            }
        }
    }

    /// dx[b, c, y, x] = dOut[b, c, y/2, x/2] / 4 (0 for a dropped odd row/column). `h`, `w` are the INPUT size.
    public static func backwardInput(batch: Int, channels: Int, h: Int, w: Int, dOut: UnsafePointer<Float>,
                                     dx: UnsafeMutablePointer<Float>) {
        let ho = h / 2, wo = w / 2
        let dxP = SharedPointer(dx)
        Parallel.forEach(batch * channels, work: batch * channels * h * w) { p in
            let gp = dOut + p * ho * wo, dp = dxP.p + p * h * w
            if h != 2 * ho || w != 2 * wo { dp.update(repeating: 0, count: h * w) }
            for i in 0..<ho {
                let src = gp + i * wo, r0 = dp + 2 * i * w, r1 = r0 + w
                var j = 0
                while j < wo { let v = 0.25 * src[j]; r0[2 &* j] = v; r0[2 &* j &+ 1] = v; j &+= 1 }
                r1.update(from: r0, count: 2 * wo)
            }
        }
    }
}
