// Tensor: a shaped, owned, 64-byte-aligned float32 buffer (row-major, NCHW for images).
//
// Kernels never allocate tensors; they take raw pointers plus explicit sizes (llm.c style) so callers control
// memory. `Tensor` is the owning handle that model code, operators and solvers pass around.

/// An owned, contiguous float32 array with a shape. Reference type: copying the handle shares storage.
public final class Tensor: @unchecked Sendable {
    /// Dimensions, outermost first (e.g. [B, C, H, W]).
    public private(set) var shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    /// Storage, 64-byte aligned, `count` floats.
    public let data: UnsafeMutablePointer<Float>

    /// A tensor of the given shape; zero-filled unless `zeroed` is false.
    public init(shape: [Int], zeroed: Bool = true) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let bytes = max(self.count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        self.data = raw.bindMemory(to: Float.self, capacity: max(self.count, 1))
        if zeroed { self.data.initialize(repeating: 0, count: max(self.count, 1)) }
    }

    /// A tensor holding `values` (count must match the shape).
    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape, zeroed: false)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    public convenience init(shape: [Int], repeating value: Float) {
        self.init(shape: shape, zeroed: false)
        data.update(repeating: value, count: count)
    }

    deinit { UnsafeMutableRawPointer(data).deallocate() }

    /// The elements as a Swift array (copies).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    public func copy() -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        t.data.update(from: data, count: count)
        return t
    }

    /// Changes the shape in place (same element count); returns self for chaining.
    @discardableResult
    public func reshape(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        shape = newShape
        return self
    }

    /// Copies the values of `other` (same count) into this tensor.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }
}
