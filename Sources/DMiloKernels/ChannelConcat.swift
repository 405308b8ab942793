// Channel concatenation of UNet skip connections (`torch.cat([a, b], dim=1)`) and its VJP (the split).

/// [B, c1, spatial] ++ [B, c2, spatial] → [B, c1+c2, spatial].
public enum ChannelConcat {
    /// out[b] = (a[b]; b[b]). Overwrites `out`.
    public static func forward(
        batch: Int, c1: Int, c2: Int, spatial: Int, a: UnsafePointer<Float>,
        b: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    ) {
        let na = c1 * spatial, nb = c2 * spatial
        for i in 0..<batch {
            let o = out + i * (na + nb)
            o.update(from: a + i * na, count: na)
            (o + na).update(from: b + i * nb, count: nb)
        }
    }

    /// Splits dOut back into da [B, c1, spatial] and db [B, c2, spatial]. Overwrites both.
    public static func backwardInput(
        batch: Int, c1: Int, c2: Int, spatial: Int, dOut: UnsafePointer<Float>,
        da: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>
    ) {
        let na = c1 * spatial, nb = c2 * spatial, row = na + nb
        for i in 0..<batch {
            (da + i * na).update(from: dOut + i * row, count: na)
            (db + i * nb).update(from: dOut + i * row + na, count: nb)
        }
    }
}
