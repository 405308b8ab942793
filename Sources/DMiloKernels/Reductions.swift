// Sums for normalisation statistics. A plain `s += Double(x[i])` loop is one dependent add per element (~1 ns);
// these keep 8 float lanes in a SIMD register and fold them into a Double every 256 elements, so they vectorise while
// each float partial sum stays short (≤ 32 terms per lane) and the total keeps Double precision.

@usableFromInline let reductionBlock = 256

/// Σ x[i], i < n.
@inlinable
func blockSum(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
    var total: Double = 0
    var i = 0
    while i + 8 <= n {
        var acc = SIMD8<Float>()
        let end = Swift.min(n, i + reductionBlock)
        while i + 8 <= end {
            acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        total += Double(acc.sum())
    }
    while i < n { total += Double(x[i]); i += 1 }
    return total
}

/// Σ (x[i] − c)², i < n (second pass of a two-pass variance).
@inlinable
func blockSumSquaredDeviation(_ x: UnsafePointer<Float>, _ n: Int, _ c: Float) -> Double {
    var total: Double = 0
    let cv = SIMD8<Float>(repeating: c)
    var i = 0
    while i + 8 <= n {
        var acc = SIMD8<Float>()
        let end = Swift.min(n, i + reductionBlock)
        while i + 8 <= end {
            let d = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - cv
            acc += d * d
            i += 8
        }
        total += Double(acc.sum())
    }
    while i < n { let d = Double(x[i]) - Double(c); total += d * d; i += 1 }
    return total
}

/// (Σ g[i], Σ g[i]·(x[i] − c)), i < n: the two sums of the GroupNorm VJP.
@inlinable
func blockSumAndCenteredDot(
    _ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int,
    _ c: Float
) -> (Double, Double) {
    var t0: Double = 0, t1: Double = 0
    let cv = SIMD8<Float>(repeating: c)
    var i = 0
    while i + 8 <= n {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        let end = Swift.min(n, i + reductionBlock)
        while i + 8 <= end {
            let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self)
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            a0 += gv
            a1 += gv * (xv - cv)
            i += 8
        }
        t0 += Double(a0.sum()); t1 += Double(a1.sum())
    }
    while i < n { t0 += Double(g[i]); t1 += Double(g[i]) * (Double(x[i]) - Double(c)); i += 1 }
    return (t0, t1)
}

/// max x[i], i < n (n ≥ 1).
@inlinable
func blockMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var i = 0
    var m = -Float.infinity
    if n >= 8 {
        var acc = SIMD8<Float>(repeating: -.infinity)
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            acc.replace(with: v, where: v .> acc)
            i &+= 8
        }
        m = acc.max()
    }
    while i < n { m = Swift.max(m, x[i]); i &+= 1 }
    return m
}

/// Σ a[i]·b[i], i < n, in float lanes (used on softmax rows of ≤ a few thousand terms).
@inlinable
func blockDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        acc +=
            UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        i &+= 8
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i &+= 1 }
    return s
}
