import DMiloKernels

/// Per-channel 2-D cross-correlation (kernel not flipped) with numpy.pad(mode: "reflect") borders, the geometry
/// every blur in docs/INTERFACE.md shares:
///
///     y[c, i, j] = Σ_{a<kh, b<kw} k[a, b] · x[c, r(i + a − kh/2), r(j + b − kw/2)]
///
/// where r reflects without repeating the edge pixel (−1 → 1, H → H−2). So the kernel centre is index
/// (kh/2, kw/2) (integer division), which for even sizes is the lower-right of the middle four (as [ILO]'s
/// 32-of-64 kernel peak). The transpose scatters through the same reflected indices, so it is exact.
///
/// With ``BlurGeometry/paper`` the image is reflect-padded by ⌊k/2⌋ on every side and the correlation is "valid",
/// as the official DMILO/DPS deblurring code does: y is (C, H + 2⌊kh/2⌋ − kh + 1, W + 2⌊kw/2⌋ − kw + 1), i.e. the
/// same size for odd kernels and one row and column more for even ones (257×257 for 256² images, 64×64 kernels).
/// The formula above holds for every output index; only the output extent differs.
struct ReflectCorrelation: Sendable {
    let channels: Int, height: Int, width: Int
    /// Output extent (H, W for `.same`).
    let outHeight: Int, outWidth: Int
    let kh: Int, kw: Int
    /// Normalised kernel, row-major (kh, kw).
    let kernel: [Float]
    /// Source row/column of each padded row/column.
    let rowSource: [Int], colSource: [Int]

    var paddedHeight: Int { outHeight + kh - 1 }
    var paddedWidth: Int { outWidth + kw - 1 }

    /// `kernel` (kh, kw) is divided by its sum. Throws (code `file.invalid` on `field`) for non-finite entries or a
    /// sum that is zero, and when the kernel does not fit the image (kh/2 < H, kw/2 < W; `manifest.invalid` when
    /// `field` is `operator.size`, i.e. the size came from the manifest).
    init(kernel k: Tensor, imageShape: [Int], field: String, geometry: BlurGeometry = .same) throws {
        try validateImageShape(imageShape)
        guard k.shape.count == 2, k.shape[0] >= 1, k.shape[1] >= 1 else {
            throw OperatorError.file(field, "blur kernel must be a 2-D array (k, k), got shape \(k.shape)")
        }
        let (kh, kw) = (k.shape[0], k.shape[1])
        let (c, h, w) = (imageShape[0], imageShape[1], imageShape[2])
        guard kh / 2 < h, kw / 2 < w else {
            // a generated kernel's size is a manifest value; a loaded one is the file's fault
            throw OperatorError(
                code: field == "operator.size" ? "manifest.invalid" : "file.invalid",
                message: "blur kernel \(kh)x\(kw) is too large for the \(h)x\(w) image (reflect padding needs k/2 < H and W)",
                field: field)
        }
        var sum = 0.0
        for i in 0..<k.count {
            guard k.data[i].isFinite else { throw OperatorError.file(field, "blur kernel holds a non-finite value") }
            sum += Double(k.data[i])
        }
        guard sum.isFinite, abs(sum) > 1e-12 else {
            throw OperatorError.file(field, "blur kernel sums to \(sum); it must have a nonzero sum to be normalised")
        }
        self.channels = c; self.height = h; self.width = w; self.kh = kh; self.kw = kw
        (outHeight, outWidth) = geometry.outputSize(height: h, width: w, kh: kh, kw: kw)
        self.kernel = (0..<k.count).map { Float(Double(k.data[$0]) / sum) }
        self.rowSource = (0..<(outHeight + kh - 1)).map { reflectIndex($0 - kh / 2, h) }
        self.colSource = (0..<(outWidth + kw - 1)).map { reflectIndex($0 - kw / 2, w) }
    }

    /// out (C, Ho, Wo) = correlation of x (C, H, W): gather the reflected image into the padded grid, then
    /// accumulate the taps.
    func forward(_ x: Tensor) -> Tensor {
        let y = Tensor(shape: [channels, outHeight, outWidth], zeroed: false)
        perChannel(x.data, height * width, y.data, outHeight * outWidth) { x, out, padded in
            for i in 0..<paddedHeight {
                let src = x + rowSource[i] * width, dst = padded + i * paddedWidth
                for j in 0..<paddedWidth { dst[j] = src[colSource[j]] }
            }
            out.update(repeating: 0, count: outHeight * outWidth)
            taps(padded, out, adjoint: false)
        }
        return y
    }

    /// dx (C, H, W) = transpose of the correlation applied to dOut (C, Ho, Wo): scatter into the padded grid, then
    /// fold each padded pixel back onto the pixel it was reflected from.
    func transpose(_ dOut: Tensor) -> Tensor {
        let dxt = Tensor(shape: [channels, height, width], zeroed: false)
        perChannel(dOut.data, outHeight * outWidth, dxt.data, height * width) { g, dx, padded in
            padded.update(repeating: 0, count: paddedHeight * paddedWidth)
            taps(padded, UnsafeMutablePointer(mutating: g), adjoint: true)
            dx.update(repeating: 0, count: height * width)
            for i in 0..<paddedHeight {
                let src = padded + i * paddedWidth, dst = dx + rowSource[i] * width
                for j in 0..<paddedWidth { dst[colSource[j]] += src[j] }
            }
        }
        return dxt
    }

    /// Runs `body(channel c of src, channel c of dst, padded scratch)` for every channel concurrently (within the
    /// job's thread budget), each with its own padded grid.
    private func perChannel(
        _ src: UnsafePointer<Float>, _ srcCount: Int, _ dst: UnsafeMutablePointer<Float>,
        _ dstCount: Int,
        _ body: (
            UnsafePointer<Float>, UnsafeMutablePointer<Float>,
            UnsafeMutablePointer<Float>
        ) -> Void
    ) {
        let sa = UInt(bitPattern: src), da = UInt(bitPattern: dst)
        Parallel.forEach(channels, work: channels * outHeight * outWidth * kh * kw) { c in
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: paddedHeight * paddedWidth)
            defer { padded.deallocate() }
            let s = UnsafePointer<Float>(bitPattern: sa)!, d = UnsafeMutablePointer<Float>(bitPattern: da)!
            body(s + c * srcCount, d + c * dstCount, padded)
        }
    }

    /// For every output row i and tap (a, b): out row i += k[a, b] · (padded row i + a from column b), or with
    /// `adjoint` the transpose of that, (padded row i + a from column b) += k[a, b] · out row i.
    private func taps(_ padded: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>, adjoint: Bool) {
        kernel.withUnsafeBufferPointer { k in
            for i in 0..<outHeight {
                let o = out + i * outWidth
                for a in 0..<kh {
                    for b in 0..<kw {
                        let kv = k[a * kw + b], p = padded + (i + a) * paddedWidth + b
                        var j = 0
                        if adjoint {
                            while j < outWidth { p[j] += kv * o[j]; j &+= 1 }
                        } else {
                            while j < outWidth { o[j] += kv * p[j]; j &+= 1 }
                        }
                    }
                }
            }
        }
    }
}

/// Border geometry of the blur operators (manifest `operator.geometry`).
public enum BlurGeometry: String, Sendable, Equatable, CaseIterable {
    /// y has the image's size; reflect borders, kernel centre ⌊k/2⌋ (the default).
    case same
    /// The official DMILO/DPS code: reflect-pad ⌊k/2⌋ on every side, valid correlation (one row and column more
    /// than the image for even kernels).
    case paper

    func outputSize(height h: Int, width w: Int, kh: Int, kw: Int) -> (Int, Int) {
        switch self {
        case .same: return (h, w)
        case .paper: return (h + 2 * (kh / 2) - kh + 1, w + 2 * (kw / 2) - kw + 1)
        }
    }
}
