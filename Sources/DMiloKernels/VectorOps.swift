// Elementwise and reduction helpers on raw buffers, written for the auto-vectoriser (&+ indices, unsafe pointers).
// Reductions accumulate in Double: solver losses and metrics sum 10^3..10^6 terms.

public enum Vec {
    @inlinable public static func axpy(_ n: Int, _ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        var i = 0
        while i < n { y[i] += a * x[i]; i &+= 1 }
    }

    @inlinable public static func scale(_ n: Int, _ a: Float, _ x: UnsafeMutablePointer<Float>) {
        var i = 0
        while i < n { x[i] *= a; i &+= 1 }
    }

    /// sum_i x_i y_i (Double accumulator)
    @inlinable public static func dot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Double {
        var s: Double = 0
        var i = 0
        while i < n { s += Double(x[i]) * Double(y[i]); i &+= 1 }
        return s
    }

    /// ‖x − y‖ in double precision (a residual norm without a temporary).
    @inlinable public static func distance(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Double {
        var acc = 0.0
        for i in 0..<n {
            let d = Double(x[i]) - Double(y[i])
            acc += d * d
        }
        return acc.squareRoot()
    }

    /// x[b, c, :] = x[b, c, :] · (1 + scale[b·stride + c]) + shift[b·stride + c] over a [B, C, n] buffer, a nil
    /// scale or shift left out: a resnet block's scale-shift modulation, or a per-channel bias (stride 0).
    public static func channelAffine(
        _ B: Int, _ C: Int, _ n: Int, _ x: UnsafeMutablePointer<Float>,
        onePlusScale scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?,
        stride: Int
    ) {
        for b in 0..<B {
            for c in 0..<C {
                let row = x + (b * C + c) * n, k = b * stride + c
                var i = 0
                switch (scale.map { 1 + $0[k] }, shift?[k]) {
                case let (s?, t?): while i < n { row[i] = row[i] * s + t; i &+= 1 }
                case let (s?, nil): while i < n { row[i] *= s; i &+= 1 }
                case let (nil, t?): while i < n { row[i] += t; i &+= 1 }
                case (nil, nil): return
                }
            }
        }
    }

    @inlinable public static func clamp(_ n: Int, _ x: UnsafeMutablePointer<Float>, _ lo: Float, _ hi: Float) {
        var i = 0
        while i < n { x[i] = Swift.min(Swift.max(x[i], lo), hi); i &+= 1 }
    }
}

extension Tensor {
    /// ⟨self, other⟩ in Double.
    public func dot(_ other: Tensor) -> Double {
        precondition(count == other.count)
        return Vec.dot(count, data, other.data)
    }
    /// ‖self‖₂
    public var norm: Double { Vec.dot(count, data, data).squareRoot() }
    public func axpy(_ a: Float, _ other: Tensor) {
        precondition(count == other.count)
        Vec.axpy(count, a, other.data, data)
    }
    public func scale(by a: Float) { Vec.scale(count, a, data) }
}
