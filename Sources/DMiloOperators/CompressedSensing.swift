import COpenBLAS
import DMiloKernels

/// Compressed sensing: y = M · vec(x) with M of shape (m, n), n = C·H·W, x flattened in C order. y is (m).
/// Linear; the adjoint is Mᵀ y. Both are one OpenBLAS `sgemv`.
public final class CompressedSensing: MeasurementOperator, @unchecked Sendable {
    /// Largest matrix accepted by default: 2^28 entries = 1 GiB of float32.
    public static let defaultMaxElements = 1 << 28

    public let name = "compressed_sensing"
    public let inputShape: [Int]
    public let outputShape: [Int]
    public let isLinear = true
    /// The (m, n) matrix (row-major). Not copied from the caller; do not mutate it.
    public let matrix: Tensor
    public var m: Int { outputShape[0] }
    public var n: Int { inputShape.reduce(1, *) }

    /// A given matrix (m, C·H·W) with finite entries.
    public init(
        matrix: Tensor, imageShape: [Int], maxElements: Int = CompressedSensing.defaultMaxElements,
        field: String = "operator.matrix"
    ) throws {
        try validateImageShape(imageShape)
        let n = imageShape.reduce(1, *)
        guard matrix.shape.count == 2, matrix.shape[0] >= 1, matrix.shape[1] == n else {
            throw OperatorError.file(
                field,
                "compressed-sensing matrix must have shape (m, \(n)) = (m, C·H·W) for image \(imageShape), got \(matrix.shape)")
        }
        guard matrix.count <= maxElements, matrix.shape[0] <= Int(Int32.max), n <= Int(Int32.max) else {
            throw OperatorError(
                code: "memory.budget",
                message: "compressed-sensing matrix has \(matrix.count) entries, more than the limit \(maxElements)", field: field)
        }
        for i in 0..<matrix.count where !matrix.data[i].isFinite {
            throw OperatorError.file(field, "compressed-sensing matrix holds a non-finite value at flat index \(i)")
        }
        self.matrix = matrix
        inputShape = imageShape
        outputShape = [matrix.shape[0]]
    }

    /// A Gaussian matrix: m = round(ratio·n) rows (half away from zero, at least 1), entries N(0, 1/m) drawn row by
    /// row from SeededRandom(seed: matrixSeed, stream: "cs-matrix"). ratio ∈ (0, 1]. Refuses m·n > maxElements
    /// (code `memory.budget`) before allocating.
    public init(
        ratio: Double, matrixSeed: UInt64, imageShape: [Int],
        maxElements: Int = CompressedSensing.defaultMaxElements
    ) throws {
        try validateImageShape(imageShape)
        guard ratio.isFinite, ratio > 0, ratio <= 1 else {
            throw OperatorError.invalid("operator.ratio", "compressed-sensing ratio must be in (0, 1], got \(ratio)")
        }
        let n = imageShape.reduce(1, *)
        let m = max(1, Int((ratio * Double(n)).rounded()))
        let (elements, overflow) = m.multipliedReportingOverflow(by: n)
        guard !overflow, elements <= maxElements, m <= Int(Int32.max), n <= Int(Int32.max) else {
            throw OperatorError(
                code: "memory.budget",
                message: "compressed-sensing matrix \(m)x\(n) would exceed the limit of \(maxElements) entries; lower the ratio",
                field: "operator.ratio")
        }
        var rng = SeededRandom(seed: matrixSeed, stream: "cs-matrix")
        let a = Tensor(shape: [m, n], zeroed: false)
        rng.fillGaussian(a.data, count: elements, sigma: Float(1 / Double(m).squareRoot()))
        matrix = a
        inputShape = imageShape
        outputShape = [m]
    }

    public func apply(_ x: Tensor) -> Tensor {
        precondition(x.count == n, "CompressedSensing: input \(x.shape), expected \(inputShape)")
        let y = Tensor(shape: outputShape)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), 1, matrix.data, Int32(n), x.data, 1, 0, y.data, 1)
        return y
    }

    public func vjp(at x: Tensor, cotangent: Tensor) -> Tensor {
        precondition(cotangent.count == m, "CompressedSensing: cotangent \(cotangent.shape), expected \(outputShape)")
        let g = Tensor(shape: inputShape)
        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(m), Int32(n), 1, matrix.data, Int32(n), cotangent.data, 1, 0, g.data, 1)
        return g
    }
}
