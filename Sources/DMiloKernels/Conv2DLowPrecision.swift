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

    /// Resident bytes of both layouts.
    public var bytes: Int { forward.bytes + backward.bytes }
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
    public static func forward(_ s: Conv2DShape, x: UnsafePointer<Float>, packed: PackedConvWeights,
                               bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
                               scratch: UnsafeMutablePointer<Float>) {
        let hwOut = s.hOut * s.wOut, hwIn = s.h * s.w
        let q = UnsafeMutableRawPointer(scratch + s.forwardScratchCount)
        for b in 0..<s.batch {
            let xb = x + b * s.cin * hwIn, ob = out + b * s.cout * hwOut
            var accumulate = false
            if let bias {
                for o in 0..<s.cout { (ob + o * hwOut).update(repeating: bias[o], count: hwOut) }
                accumulate = true
            }
            if s.isPointwise {
                LowPrecisionGEMM.gemm(packed.forward, b: xb, ldb: hwOut, n: hwOut, c: ob, ldc: hwOut,
                                      accumulate: accumulate, scratch: q)
                continue
            }
            var y0 = 0
            while y0 < s.hOut {
                let rows = Swift.min(s.tileRows, s.hOut - y0), n = rows * s.wOut
                im2col(s, x: xb, rowStart: y0, rows: rows, col: scratch)
                LowPrecisionGEMM.gemm(packed.forward, b: scratch, ldb: n, n: n, c: ob + y0 * s.wOut, ldc: hwOut,
                                      accumulate: accumulate, scratch: q)
                y0 += rows
            }
        }
    }

    /// dx = ∂⟨dOut, conv(x)⟩/∂x with packed weights (Wᵀ layout). Overwrites `dx`.
    public static func backwardInput(_ s: Conv2DShape, dOut: UnsafePointer<Float>, packed: PackedConvWeights,
                                     dx: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let hwOut = s.hOut * s.wOut, hwIn = s.h * s.w
        let q = UnsafeMutableRawPointer(scratch + s.forwardScratchCount)
        for b in 0..<s.batch {
            let gb = dOut + b * s.cout * hwOut, dxb = dx + b * s.cin * hwIn
            if s.isPointwise {
                LowPrecisionGEMM.gemm(packed.backward, b: gb, ldb: hwOut, n: hwOut, c: dxb, ldc: hwOut,
                                      accumulate: false, scratch: q)
                continue
            }
            dxb.update(repeating: 0, count: s.cin * hwIn)
            var y0 = 0
            while y0 < s.hOut {
                let rows = Swift.min(s.tileRows, s.hOut - y0), n = rows * s.wOut
                LowPrecisionGEMM.gemm(packed.backward, b: gb + y0 * s.wOut, ldb: hwOut, n: n, c: scratch, ldc: n,
                                      accumulate: false, scratch: q)
                col2imAdd(s, col: scratch, rowStart: y0, rows: rows, dx: dxb)
                y0 += rows
            }
        }
    }
}
