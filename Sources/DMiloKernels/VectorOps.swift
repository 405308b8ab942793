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
