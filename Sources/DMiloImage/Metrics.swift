// Metrics: PSNR and SSIM exactly as scikit-image 0.26 computes them (checked against fixtures written by
// Tools/make_image_fixtures.py), on images converted from model units to [0, 1].
//
// Conversion: x01 = (clamp(x, −1, 1) + 1) / 2 for BOTH images, in Double. The estimate is clamped because a
// solver's x̂ may leave [−1, 1] and the reconstruction PNG clips it anyway; clamping the truth is a no-op for
// images read from PNG and keeps the data range honest for .npy truths.
//
// skimage references:
//   peak_signal_noise_ratio(t, e, data_range=1) = 10·log10(1 / mean((t − e)²))
//   structural_similarity(t, e, data_range=1, win_size=7, gaussian_weights=False, use_sample_covariance=True,
//                         K1=0.01, K2=0.03, channel_axis=<C>) — per channel:
//     u = 7×7 box means of x, y, x², y², xy;  cov_norm = 49/48
//     vx = cov_norm·(uxx − ux²), vy likewise, vxy = cov_norm·(uxy − ux·uy)
//     S = (2·ux·uy + C1)(2·vxy + C2) / ((ux² + uy² + C1)(vx + vy + C2)),  C1 = 0.01², C2 = 0.03²
//     mean of S over the image cropped by pad = 3 on every side; then mean over channels.
//   skimage filters with scipy's uniform_filter (mode "reflect"), but the cropped region only contains windows
//   that lie entirely inside the image, so only those are computed here and the boundary rule never matters.

import DMiloKernels
import Foundation

/// Image quality metrics of INTERFACE "metrics.json": PSNR and SSIM, data range 1 on [0, 1] images.
public enum Metrics {
    /// SSIM window side (skimage default `win_size=7`).
    public static let ssimWindow = 7

    /// Peak signal-to-noise ratio in dB of `estimate` against `truth`, both model-unit tensors of the same shape
    /// ((C,H,W), (H,W), ...). +infinity when the [0,1] images are identical.
    public static func psnr(truth: Tensor, estimate: Tensor) throws -> Double {
        guard truth.shape == estimate.shape else {
            throw ImageShapeError("PSNR: truth shape \(truth.shape) differs from estimate shape \(estimate.shape)")
        }
        guard truth.count > 0 else { throw ImageShapeError("PSNR: empty images") }
        var sum = 0.0
        for i in 0..<truth.count {
            let d = unit(truth.data[i]) - unit(estimate.data[i])
            sum += d * d
        }
        let mse = sum / Double(truth.count)
        return mse == 0 ? .infinity : 10 * log10(1 / mse)
    }

    /// Mean structural similarity of `estimate` against `truth`, model-unit tensors of shape (C,H,W) or (H,W),
    /// H and W at least 7 (skimage refuses smaller images too).
    public static func ssim(truth: Tensor, estimate: Tensor) throws -> Double {
        guard truth.shape == estimate.shape else {
            throw ImageShapeError("SSIM: truth shape \(truth.shape) differs from estimate shape \(estimate.shape)")
        }
        let (c, h, w): (Int, Int, Int)
        switch truth.shape.count {
        case 2: (c, h, w) = (1, truth.shape[0], truth.shape[1])
        case 3: (c, h, w) = (truth.shape[0], truth.shape[1], truth.shape[2])
        default: throw ImageShapeError("SSIM: shape \(truth.shape) is not (C,H,W) or (H,W)")
        }
        guard c > 0, h >= ssimWindow, w >= ssimWindow else {
            throw ImageShapeError("SSIM: images of shape \(truth.shape) are smaller than the \(ssimWindow)x\(ssimWindow) window")
        }
        let plane = h * w
        var x = [Double](repeating: 0, count: plane), y = x
        var total = 0.0
        for ch in 0..<c {
            for i in 0..<plane {
                x[i] = unit(truth.data[ch * plane + i])
                y[i] = unit(estimate.data[ch * plane + i])
            }
            total += ssimPlane(x, y, height: h, width: w)
        }
        return total / Double(c)
    }

    /// Model units -> [0, 1] with clamping (see the file comment).
    @inline(__always)
    static func unit(_ v: Float) -> Double { (min(max(Double(v), -1), 1) + 1) / 2 }

    /// Mean SSIM of one [0,1] plane over the windows that fit entirely inside it.
    static func ssimPlane(_ x: [Double], _ y: [Double], height h: Int, width w: Int) -> Double {
        let k = ssimWindow
        let np = Double(k * k)
        let covNorm = np / (np - 1)
        let c1 = 0.01 * 0.01, c2 = 0.03 * 0.03
        let ow = w - k + 1, oh = h - k + 1  // valid windows = the cropped region of skimage
        // Horizontal 7-sums of x, y, x², y², xy for every row and window column.
        var rows = [[Double]](repeating: [Double](repeating: 0, count: h * ow), count: 5)
        for r in 0..<h {
            for j in 0..<ow {
                var s = (0.0, 0.0, 0.0, 0.0, 0.0)
                for q in 0..<k {
                    let a = x[r * w + j + q], b = y[r * w + j + q]
                    s.0 += a; s.1 += b; s.2 += a * a; s.3 += b * b; s.4 += a * b
                }
                rows[0][r * ow + j] = s.0; rows[1][r * ow + j] = s.1; rows[2][r * ow + j] = s.2
                rows[3][r * ow + j] = s.3; rows[4][r * ow + j] = s.4
            }
        }
        var total = 0.0
        for i in 0..<oh {
            for j in 0..<ow {
                var m = [Double](repeating: 0, count: 5)
                for f in 0..<5 {
                    var s = 0.0
                    for p in 0..<k { s += rows[f][(i + p) * ow + j] }
                    m[f] = s / np
                }
                let (ux, uy, uxx, uyy, uxy) = (m[0], m[1], m[2], m[3], m[4])
                let vx = covNorm * (uxx - ux * ux)
                let vy = covNorm * (uyy - uy * uy)
                let vxy = covNorm * (uxy - ux * uy)
                let a1 = 2 * ux * uy + c1, a2 = 2 * vxy + c2
                let b1 = ux * ux + uy * uy + c1, b2 = vx + vy + c2
                total += (a1 * a2) / (b1 * b2)
            }
        }
        return total / Double(oh * ow)
    }
}
