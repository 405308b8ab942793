// exp(x) written for the auto-vectoriser. glibc `expf` is an opaque call per element, so SiLU and softmax loops
// stayed scalar (~3 ns/element); this version is plain float/int arithmetic that LLVM turns into AVX2/AVX-512.
//
// Cephes `expf` algorithm: n = round(x·log2 e) via the 1.5·2²³ magic-number trick (no float→int trap), Cody–Waite
// reduction r = x − n·ln2 with ln2 split in two, a degree-6 polynomial for eʳ on |r| ≤ ln2/2 (error ≈ 1 ulp), and
// 2ⁿ applied by adding n to the exponent bits.

@usableFromInline let expMagic: Float = 12_582_912  // 1.5 · 2²³: adding it rounds to an integer in the low mantissa bits

/// eˣ for x in float range, accurate to ~2 ulp; results below e^−87.3 flush toward 1e−38, above e^88.7 clamp to 3.4e38.
@inline(__always) @inlinable
public func fastExp(_ x: Float) -> Float {
    let xc = Swift.min(Swift.max(x, -87.33), 88.72)
    let m = xc * 1.442_695_04 + expMagic
    let n = m - expMagic
    var r = xc - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    let z = r * r
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let e = p * z + r + 1
    // the low bits of m hold n (two's complement, offset by the magic's mantissa 0x400000)
    let nBits = Int32(bitPattern: m.bitPattern) &- 0x4B40_0000
    return Float(bitPattern: UInt32(bitPattern: Int32(bitPattern: e.bitPattern) &+ (nBits &<< 23)))
}
