// IEEE binary16 and bfloat16 <-> float32 by bit manipulation (no tables, no Float16 type: the default x86-64
// target has no F16C, where `Float(Float16)` is a libcall per element; see docs/platform.md §4).

/// Half-precision conversions. All conversions to 16 bits round to nearest, ties to even; NaN stays NaN.
public enum HalfPrecision {
    /// binary16 bits -> Float (exact).
    @inlinable
    public static func f16ToF32(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1f
        let mant = UInt32(h & 0x3ff)
        if exp == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }  // inf / NaN
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }  // ±0
            // subnormal: mant · 2^-24, exact in float32
            let v = Float(mant) * Float(bitPattern: 0x3380_0000)  // 2^-24
            return sign != 0 ? -v : v
        }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// Float -> binary16 bits, round to nearest even; overflow -> ±inf, underflow -> subnormal/±0.
    @inlinable
    public static func f32ToF16(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xff)
        let mant = x & 0x7f_ffff
        if exp == 0xff { return sign | 0x7c00 | (mant != 0 ? 0x200 | UInt16(mant >> 13) : 0) }
        let e = exp - 127 + 15
        if e >= 0x1f { return sign | 0x7c00 }
        if e <= 0 {
            if e < -10 { return sign }  // below half the smallest subnormal
            let m = mant | 0x80_0000  // implicit bit
            let shift = UInt32(14 - e)
            var r = m >> shift
            let rem = m & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
            if rem > halfway || (rem == halfway && (r & 1) == 1) { r += 1 }
            return sign | UInt16(r)
        }
        var r = UInt32(e) << 10 | (mant >> 13)
        let rem = mant & 0x1fff
        if rem > 0x1000 || (rem == 0x1000 && (r & 1) == 1) { r += 1 }  // may carry into the exponent: correct
        return sign | UInt16(r)
    }

    /// bfloat16 bits -> Float (exact: the top half of a float32).
    @inlinable
    public static func bf16ToF32(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Float -> bfloat16 bits, round to nearest even (PyTorch's rounding); NaN is kept quiet.
    @inlinable
    public static func f32ToBF16(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        if f.isNaN { return UInt16(x >> 16) | 0x40 }
        let rounding = 0x7fff + ((x >> 16) & 1)
        return UInt16((x &+ rounding) >> 16)
    }

    /// Converts `count` little-endian binary16 values at `src` (any alignment) into `dst`.
    public static func f16ToF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        widen(src, dst, count: count, f16ToF32)
    }

    /// Converts `count` little-endian bfloat16 values at `src` (any alignment) into `dst`.
    public static func bf16ToF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        widen(src, dst, count: count, bf16ToF32)
    }

    /// dst[i] = convert(src's i-th little-endian 16-bit value), for any alignment of `src`.
    @inline(__always)
    static func widen(
        _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int,
        _ convert: (UInt16) -> Float
    ) {
        var i = 0
        while i < count {
            dst[i] = convert(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self)))
            i &+= 1
        }
    }
}
