import DMiloKernels

/// A sensor model y = A(x). x is one image (C, H, W) in model units [-1, 1]; y has `outputShape`.
public protocol MeasurementOperator: AnyObject {
    /// Short name as in the manifest (`super_resolution`, `inpainting`, ...).
    var name: String { get }
    /// Shape of x: [C, H, W].
    var inputShape: [Int] { get }
    /// Shape of y = A(x) (documented per operator in INTERFACE / README).
    var outputShape: [Int] { get }
    /// True when A is linear (then `vjp` is the adjoint and does not depend on x).
    var isLinear: Bool { get }
    /// y = A(x)
    func apply(_ x: Tensor) -> Tensor
    /// J_A(x)ᵀ c: for linear operators the adjoint Aᵀc.
    func vjp(at x: Tensor, cotangent: Tensor) -> Tensor
}

extension MeasurementOperator {
    /// Aᵀy for linear operators (x is ignored).
    public func adjoint(_ y: Tensor) -> Tensor {
        precondition(isLinear, "\(name) is not linear")
        return vjp(at: Tensor(shape: inputShape), cotangent: y)
    }
}
