// Layout changes between NCHW feature maps ([B, C, L], L = H·W) and token-major sequences ([B, L, C]) for attention.
// Each is the other's adjoint, so the VJP of one is the other.

/// [B, C, L] ↔ [B, L, C].
public enum Transpose {
    /// Tile edge: a 32×32 float tile (4 KiB) per side keeps both reads and writes in L1.
    static let tile = 32

    /// out[b, l, c] = x[b, c, l]. Overwrites `out`.
    public static func channelsToTokens(
        batch: Int, channels: Int, length: Int, x: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>
    ) {
        for b in 0..<batch {
            transpose(rows: channels, cols: length, src: x + b * channels * length, dst: out + b * channels * length)
        }
    }

    /// out[b, c, l] = x[b, l, c]. Overwrites `out`.
    public static func tokensToChannels(
        batch: Int, channels: Int, length: Int, x: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>
    ) {
        for b in 0..<batch {
            transpose(rows: length, cols: channels, src: x + b * channels * length, dst: out + b * channels * length)
        }
    }

    /// dst[c, r] = src[r, c] for a rows×cols matrix, in tiles.
    static func transpose(rows: Int, cols: Int, src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>) {
        var r0 = 0
        while r0 < rows {
            let r1 = Swift.min(rows, r0 + tile)
            var c0 = 0
            while c0 < cols {
                let c1 = Swift.min(cols, c0 + tile)
                for r in r0..<r1 {
                    let s = src + r * cols
                    var c = c0
                    while c < c1 { dst[c &* rows &+ r] = s[c]; c &+= 1 }
                }
                c0 = c1
            }
            r0 = r1
        }
    }
}
