// Convolution forward and input VJP with packed low-precision weights (int8 or bf16, see LowPrecisionGEMM.swift).
// Same tiling as the f32 path (im2col tile → GEMM; GEMM → col2im tile); the activations are quantised per column
// of the tile inside the GEMM. The f32 path's cin > cout "transposed" route is not needed here: the VJP GEMM reads
// the pre-transposed weight matrix Wᵀ packed at load.

/// Convolution weights packed once for a low-precision mode: W [cout × cin·kh·kw] for the forward GEMM and
/// Wᵀ [cin·kh·kw × cout] for the input-VJP GEMM.
public final class PackedConvWeights: @unchecked Sendable {
    public let forward: PackedMatrix, backward: PackedMatrix
    public var precision: ComputePrecision { forward.precision }

    /// `weight` [cout, patch] (PyTorch [cout, cin, kh, kw] flattened).
    public init(_ p: ComputePrecision, cout: Int, patch: Int, weight: UnsafePointer<Float>) {
        forward = PackedMatrix(p, rows: cout, k: patch, values: weight, ld: patch)
        let t = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, cout * patch))
        defer { t.deallocate() }
        for o in 0..<cout { for q in 0..<patch { t[q * cout + o] = weight[o * patch + q] } }
        backward = PackedMatrix(p, rows: patch, k: cout, values: t, ld: cout)
    }
}

extension Conv2DShape {
    /// Floats of scratch the low-precision `Conv2D.forward(_:x:packed:...)` / `backwardInput(_:dOut:packed:...)` need.
    public func lowPrecisionScratchCount(_ p: ComputePrecision) -> Int {
        let n = isPointwise ? hOut * wOut : tileRows * wOut
        return forwardScratchCount + LowPrecisionGEMM.scratchCount(p, k: Swift.max(patchSize, cout), n: n)
    }
}

extension Conv2D {
    /// out = conv(x, W) + bias with packed weights. Overwrites `out`; `scratch` holds `s.lowPrecisionScratchCount`.
    public static func forward(
        _ s: Conv2DShape, x: UnsafePointer<Float>, packed: PackedConvWeights,
        bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let q = UnsafeMutableRawPointer(scratch + s.forwardScratchCount), ldc = s.hOut * s.wOut
        im2colRoute(s, x: x, bias: bias, out: out, col: scratch) { b, ldb, n, c, acc in
            LowPrecisionGEMM.gemm(packed.forward, b: b, ldb: ldb, n: n, c: c, ldc: ldc, accumulate: acc, scratch: q)
        }
    }

    /// dx = ∂⟨dOut, conv(x)⟩/∂x with packed weights (Wᵀ layout). Overwrites `dx`.
    public static func backwardInput(
        _ s: Conv2DShape, dOut: UnsafePointer<Float>, packed: PackedConvWeights,
        dx: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let q = UnsafeMutableRawPointer(scratch + s.forwardScratchCount), ldb = s.hOut * s.wOut
        col2imRoute(s, dOut: dOut, dx: dx, col: scratch) { b, n, c, ldc in
            LowPrecisionGEMM.gemm(packed.backward, b: b, ldb: ldb, n: n, c: c, ldc: ldc, accumulate: false, scratch: q)
        }
    }
}
