// 2-D convolution (PyTorch `nn.Conv2d` semantics: cross-correlation, zero padding, groups = 1) and its input VJP.
//
// Forward:   out[b] = W · im2col(x[b]) + bias        W viewed as [cout, cin*kh*kw]
// Backward:  dx[b]  = col2im(Wᵀ · dOut[b])           (the adjoint of im2col is a scatter-add)
// Both run in tiles of output rows so the column buffer stays a few MiB even for 256×256 images, and both skip
// the column buffer entirely for 1×1 / stride 1 / no padding (then im2col is the identity).
// For stride 1 and cin > cout the two routes swap (see `Conv2DShape.transposed`): the forward pass runs as the
// col2im VJP of the flipped kernel and the VJP as an im2col convolution, so the GEMM always has the larger M.

/// Geometry of one convolution. Weight layout [cout, cin, kh, kw] (PyTorch), bias [cout].
public struct Conv2DShape: Sendable, Equatable {
    public var batch, cin, h, w, cout, kh, kw, stride, padH, padW: Int

    /// Square kernel and symmetric padding (the only case UNet2DModel uses).
    public init(batch: Int, cin: Int, h: Int, w: Int, cout: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.init(
            batch: batch, cin: cin, h: h, w: w, cout: cout, kh: kernel, kw: kernel, stride: stride,
            padH: padding, padW: padding)
    }

    /// General rectangular kernel and per-axis padding.
    public init(batch: Int, cin: Int, h: Int, w: Int, cout: Int, kh: Int, kw: Int, stride: Int, padH: Int, padW: Int) {
        self.batch = batch; self.cin = cin; self.h = h; self.w = w; self.cout = cout
        self.kh = kh; self.kw = kw; self.stride = stride; self.padH = padH; self.padW = padW
    }

    public var hOut: Int { (h + 2 * padH - kh) / stride + 1 }
    public var wOut: Int { (w + 2 * padW - kw) / stride + 1 }
    /// Rows of the unfolded input (= GEMM inner dimension).
    public var patchSize: Int { cin * kh * kw }
    public var weightCount: Int { cout * cin * kh * kw }
    public var inputCount: Int { batch * cin * h * w }
    public var outputCount: Int { batch * cout * hOut * wOut }
    /// Multiply-adds ×2 of one forward pass (whole batch).
    public var flops: Int { 2 * batch * cout * patchSize * hOut * wOut }

    /// Stride 1 with output width = input width (kw = 2·padW + 1): each im2col row is a shifted copy of the image.
    public var isSameWidthStride1: Bool { stride == 1 && kw == 2 * padW + 1 }

    /// True when im2col is the identity (1×1 kernel, stride 1, no padding): the GEMM reads x directly.
    public var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 && padH == 0 && padW == 0 }

    /// Output rows per im2col tile: keeps the column buffer near `Conv2DShape.tileBudget` floats (at least one row).
    public var tileRows: Int {
        let perRow = Swift.max(1, patchSize * wOut)
        return Swift.max(1, Swift.min(hOut, Conv2DShape.tileBudget / perRow))
    }

    /// Column-buffer budget in floats (8 MiB): big enough for full-speed GEMMs, small enough to stay near L3.
    /// `scratchCount` is at most this (or one output row of columns, if larger) plus one transformed weight copy.
    /// Only tests change it (to force many tiles).
    public internal(set) nonisolated(unsafe) static var tileBudget = 1 << 21

    /// Floats of scratch `Conv2D.forward` and `Conv2D.backwardInput` need (0 for pointwise convolutions).
    public var scratchCount: Int {
        guard let t = transposed else { return forwardScratchCount }
        return Swift.max(forwardScratchCount, weightCount + t.forwardScratchCount)
    }

    /// Column-buffer floats of the im2col path (0 for pointwise convolutions).
    var forwardScratchCount: Int { isPointwise ? 0 : patchSize * tileRows * wOut }

    /// For stride 1 the input VJP is itself a stride-1 convolution of dOut (cout → cin channels, hOut×wOut → h×w)
    /// with the spatially flipped, in/out-swapped kernel and padding k − 1 − p. Running it as a forward convolution
    /// makes the GEMM's inner dimension cout·kh·kw instead of cout and replaces col2im's scatter-add by im2col's
    /// copy. Measured (notes in the commit log): 1.5× faster for 96→32, 7× for 32→1, but slower when cin ≤ cout
    /// (the transposed GEMM then has the smaller M), so it is used only for cin > cout.
    var transposed: Conv2DShape? {
        guard stride == 1, !isPointwise, padH <= kh - 1, padW <= kw - 1, cin > cout else {
            return nil
        }
        return Conv2DShape(
            batch: batch, cin: cout, h: hOut, w: wOut, cout: cin, kh: kh, kw: kw, stride: 1,
            padH: kh - 1 - padH, padW: kw - 1 - padW)
    }

    /// True when every size is positive and the kernel fits in the padded input.
    public var isValid: Bool {
        batch > 0 && cin > 0 && h > 0 && w > 0 && cout > 0 && kh > 0 && kw > 0 && stride > 0 && padH >= 0 && padW >= 0
            && h + 2 * padH >= kh && w + 2 * padW >= kw
    }
}

/// Convolution kernels on caller-owned NCHW buffers. Shapes must satisfy `Conv2DShape.isValid` (callers check it
/// when they build a model from a config; the kernels do not re-check). Outputs must not overlap inputs.
public enum Conv2D {
    /// out[B, cout, hOut, wOut] = conv(x[B, cin, h, w], weight) + bias. Overwrites `out`.
    /// `scratch` holds `s.scratchCount` floats.
    public static func forward(
        _ s: Conv2DShape, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        if let t = s.transposed {
            // conv(x, W) is the input VJP of conv(·, flip(swap(W))) on shape t, evaluated at x. Its Wᵀ·x + col2im
            // route has the GEMM with the larger M when cout < cin: 96→32 @32² 0.71 → 0.60 ms, 32→1 0.11 → 0.018 ms.
            let wT = scratch
            flipSwap(s, weight: weight, into: wT)
            backwardCol2im(t, dOut: x, weight: wT, dx: out, scratch: scratch + s.weightCount)
            Vec.channelAffine(s.batch, s.cout, s.hOut * s.wOut, out, onePlusScale: nil, shift: bias, stride: 0)
            return
        }
        forwardIm2col(s, x: x, weight: weight, bias: bias, out: out, scratch: scratch)
    }

    /// out = W · im2col(x) + bias, tile by tile.
    static func forwardIm2col(
        _ s: Conv2DShape, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let k = s.patchSize, ldc = s.hOut * s.wOut
        im2colRoute(s, x: x, bias: bias, out: out, col: scratch) { b, ldb, n, c, accumulate in
            BLAS.sgemm(
                transA: false, transB: false, m: s.cout, n: n, k: k, alpha: 1, a: weight, lda: k, b: b, ldb: ldb,
                beta: accumulate ? 1 : 0, c: c, ldc: ldc)
        }
    }

    /// The im2col route of the f32 and the packed-weight forward: out = W · im2col(x) + bias, tile by tile (x itself
    /// for pointwise convolutions). `gemm(b, ldb, n, c, accumulate)` computes c (+)= W · b for n columns of b (row
    /// stride ldb), c with row stride hOut·wOut. `col` holds `s.forwardScratchCount` floats.
    @inline(__always)
    static func im2colRoute(
        _ s: Conv2DShape, x: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>, col: UnsafeMutablePointer<Float>,
        gemm: (UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>, Bool) -> Void
    ) {
        let hwOut = s.hOut * s.wOut, hwIn = s.h * s.w
        for b in 0..<s.batch {
            let xb = x + b * s.cin * hwIn, ob = out + b * s.cout * hwOut
            // Start from the bias so the GEMM can accumulate (beta = 1) instead of a second pass over `out`.
            if let bias { for o in 0..<s.cout { (ob + o * hwOut).update(repeating: bias[o], count: hwOut) } }
            if s.isPointwise {
                gemm(xb, hwOut, hwOut, ob, bias != nil)
                continue
            }
            var y0 = 0
            while y0 < s.hOut {
                let rows = Swift.min(s.tileRows, s.hOut - y0), n = rows * s.wOut
                im2col(s, x: xb, rowStart: y0, rows: rows, col: col)
                gemm(col, n, n, ob + y0 * s.wOut, bias != nil)
                y0 += rows
            }
        }
    }

    /// dx[B, cin, h, w] = ∂⟨dOut, conv(x)⟩/∂x (the transposed convolution of dOut). Overwrites `dx`.
    /// `scratch` holds `s.scratchCount` floats.
    public static func backwardInput(
        _ s: Conv2DShape, dOut: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        if let t = s.transposed {
            // dx = conv(dOut, flip(swap(W))) with the complementary padding, through the im2col route
            let wT = scratch
            flipSwap(s, weight: weight, into: wT)
            forwardIm2col(t, x: dOut, weight: wT, bias: nil, out: dx, scratch: scratch + s.weightCount)
            return
        }
        backwardCol2im(s, dOut: dOut, weight: weight, dx: dx, scratch: scratch)
    }

    /// wT[c, o, i, j] = W[o, c, kh−1−i, kw−1−j]: the kernel of the transposed (stride-1) convolution.
    static func flipSwap(_ s: Conv2DShape, weight: UnsafePointer<Float>, into wT: UnsafeMutablePointer<Float>) {
        // Runs on every call of a cin > cout convolution (twice per forward+VJP), so the 3×3 case is unrolled.
        let taps = s.kh * s.kw
        for c in 0..<s.cin {
            var dst = wT + c * s.cout * taps
            var src = weight + c * taps
            let srcStride = s.cin * taps
            if taps == 9 {
                for _ in 0..<s.cout {
                    dst[0] = src[8]; dst[1] = src[7]; dst[2] = src[6]
                    dst[3] = src[5]; dst[4] = src[4]; dst[5] = src[3]
                    dst[6] = src[2]; dst[7] = src[1]; dst[8] = src[0]
                    dst += 9; src += srcStride
                }
            } else {
                for _ in 0..<s.cout {
                    var p = 0
                    while p < taps { dst[p] = src[taps &- 1 &- p]; p &+= 1 }
                    dst += taps; src += srcStride
                }
            }
        }
    }

    /// dx = col2im(Wᵀ · dOut), tile by tile.
    static func backwardCol2im(
        _ s: Conv2DShape, dOut: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let k = s.patchSize, ldb = s.hOut * s.wOut
        col2imRoute(s, dOut: dOut, dx: dx, col: scratch) { b, n, c, ldc in
            BLAS.sgemm(
                transA: true, transB: false, m: k, n: n, k: s.cout, alpha: 1, a: weight, lda: k, b: b, ldb: ldb,
                beta: 0, c: c, ldc: ldc)
        }
    }

    /// The col2im route of the f32 and the packed-weight input VJP: dx = col2im(Wᵀ · dOut), tile by tile (straight
    /// into dx for pointwise convolutions). `gemmT(b, n, c, ldc)` computes c = Wᵀ · b for n columns of b (row
    /// stride hOut·wOut), c with row stride ldc. `col` holds `s.forwardScratchCount` floats.
    @inline(__always)
    static func col2imRoute(
        _ s: Conv2DShape, dOut: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
        col: UnsafeMutablePointer<Float>,
        gemmT: (UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Int) -> Void
    ) {
        let hwOut = s.hOut * s.wOut, hwIn = s.h * s.w
        for b in 0..<s.batch {
            let gb = dOut + b * s.cout * hwOut, dxb = dx + b * s.cin * hwIn
            if s.isPointwise {
                gemmT(gb, hwOut, dxb, hwOut)
                continue
            }
            dxb.update(repeating: 0, count: s.cin * hwIn)
            var y0 = 0
            while y0 < s.hOut {
                let rows = Swift.min(s.tileRows, s.hOut - y0), n = rows * s.wOut
                gemmT(gb + y0 * s.wOut, n, col, n)
                col2imAdd(s, col: col, rowStart: y0, rows: rows, dx: dxb)
                y0 += rows
            }
        }
    }

    /// Unfolds output rows [rowStart, rowStart+rows) of one image: col[(c·kh+i)·kw+j, r·wOut+ox] =
    /// x[c, (rowStart+r)·stride − padH + i, ox·stride − padW + j], zero outside the image.
    @usableFromInline
    static func im2col(
        _ s: Conv2DShape, x: UnsafePointer<Float>, rowStart: Int, rows: Int,
        col: UnsafeMutablePointer<Float>
    ) {
        let timer = OpProfile.begin(.im2col); defer { OpProfile.end(timer) }
        let n = rows * s.wOut, hw = s.h * s.w, taps = s.kh * s.kw
        let colP = SharedPointer(col)
        Parallel.forEach(s.patchSize, work: s.patchSize * n) { p in
            let c = p / taps, i = (p % taps) / s.kw, j = p % s.kw
            let xc = x + c * hw, dst = colP.p + p * n
            if s.isSameWidthStride1 {
                // A "same"-width stride-1 tap is the flattened image shifted by (i − padH)·w + (j − padW):
                // one long copy, then zero the rows above/below the image and the columns that wrapped around.
                guard let t = SameWidthTap(s, i: i, j: j, rowStart: rowStart, rows: rows) else {
                    dst.update(repeating: 0, count: n); return
                }
                dst.update(repeating: 0, count: t.lo)
                (dst + t.lo).update(from: xc + t.base + t.lo, count: t.hi - t.lo)
                (dst + t.hi).update(repeating: 0, count: n - t.hi)
                t.zeroWrappedColumns(dst)
                return
            }
            let (lo, hi) = validColumns(s, j: j)
            var d = dst
            for r in 0..<rows {
                let iy = (rowStart + r) * s.stride - s.padH + i
                if iy < 0 || iy >= s.h {
                    d.update(repeating: 0, count: s.wOut)
                } else {
                    let src = xc + iy * s.w - s.padW + j
                    var ox = 0
                    while ox < lo { d[ox] = 0; ox &+= 1 }
                    switch s.stride {  // constant strides let LLVM vectorise the gather (stride 2 = downsampling)
                    case 1: while ox < hi { d[ox] = src[ox]; ox &+= 1 }
                    case 2: while ox < hi { d[ox] = src[ox &* 2]; ox &+= 1 }
                    default: while ox < hi { d[ox] = src[ox &* s.stride]; ox &+= 1 }
                    }
                    while ox < s.wOut { d[ox] = 0; ox &+= 1 }
                }
                d += s.wOut
            }
        }
    }

    /// Adjoint of `im2col`: dx[c, iy, ix] += col[...] for every in-image tap. Parallel over input channels so
    /// no two workers touch the same dx plane. Clobbers the wrapped-around columns of `col` (scratch).
    @usableFromInline
    static func col2imAdd(
        _ s: Conv2DShape, col: UnsafeMutablePointer<Float>, rowStart: Int, rows: Int,
        dx: UnsafeMutablePointer<Float>
    ) {
        let colP = SharedPointer(col), dxP = SharedPointer(dx)
        let timer = OpProfile.begin(.im2col); defer { OpProfile.end(timer) }
        let n = rows * s.wOut, hw = s.h * s.w, taps = s.kh * s.kw
        Parallel.forEach(s.cin, work: s.patchSize * n) { c in
            let dxc = dxP.p + c * hw
            for t in 0..<taps {
                let i = t / s.kw, j = t % s.kw
                let src = colP.p + (c * taps + t) * n
                if s.isSameWidthStride1 {
                    // mirror of im2col's shifted copy: drop wrapped columns, then one long add
                    guard let t = SameWidthTap(s, i: i, j: j, rowStart: rowStart, rows: rows) else { continue }
                    t.zeroWrappedColumns(src)
                    let d = dxc + t.base
                    var k = t.lo
                    while k < t.hi { d[k] += src[k]; k &+= 1 }
                    continue
                }
                let (lo, hi) = validColumns(s, j: j)
                var sr = src
                for r in 0..<rows {
                    let iy = (rowStart + r) * s.stride - s.padH + i
                    if iy >= 0 && iy < s.h {
                        let dst = dxc + iy * s.w - s.padW + j
                        var ox = lo
                        switch s.stride {
                        case 1: while ox < hi { dst[ox] += sr[ox]; ox &+= 1 }
                        case 2: while ox < hi { dst[ox &* 2] += sr[ox]; ox &+= 1 }
                        default: while ox < hi { dst[ox &* s.stride] += sr[ox]; ox &+= 1 }
                        }
                    }
                    sr += s.wOut
                }
            }
        }
    }

    /// Output columns [lo, hi) whose tap j lands inside the image: 0 ≤ ox·stride − padW + j < w.
    @inline(__always) @usableFromInline
    static func validColumns(_ s: Conv2DShape, j: Int) -> (Int, Int) {
        let off = j - s.padW
        var lo = 0
        if off < 0 { lo = (-off + s.stride - 1) / s.stride }
        // largest ox with ox·stride + off ≤ w − 1
        let last = s.w - 1 - off
        let hi = last < 0 ? 0 : Swift.min(s.wOut, last / s.stride + 1)
        return (Swift.min(lo, hi), hi)
    }
}

/// Where one tap (i, j) of a "same"-width stride-1 convolution reads, for output rows [rowStart, rowStart + rows):
/// the flattened image shifted by `base`, valid for block elements [lo, hi); output rows [a, b) of the block lie
/// inside the image. nil when no row of the block does.
@usableFromInline
struct SameWidthTap {
    let base, lo, hi, a, b, dxo, w: Int

    @inline(__always) @usableFromInline
    init?(_ s: Conv2DShape, i: Int, j: Int, rowStart: Int, rows: Int) {
        let dy = i - s.padH
        dxo = j - s.padW; w = s.w
        a = Swift.max(rowStart, -dy) - rowStart
        b = Swift.min(rowStart + rows, s.h - dy) - rowStart
        if a >= b { return nil }
        base = (rowStart + dy) * w + dxo
        lo = Swift.max(a * w, -base)
        hi = Swift.min(b * w, s.h * s.w - base)
    }

    /// Zeroes the columns the shifted copy wrapped around (from the previous or next image row) in block rows [a, b).
    @inline(__always) @usableFromInline
    func zeroWrappedColumns(_ p: UnsafeMutablePointer<Float>) {
        guard dxo != 0 else { return }
        let c0 = dxo < 0 ? 0 : w - dxo, c1 = dxo < 0 ? -dxo : w
        var r = a
        while r < b {
            var ox = c0
            while ox < c1 { p[r &* w &+ ox] = 0; ox &+= 1 }
            r &+= 1
        }
    }
}
