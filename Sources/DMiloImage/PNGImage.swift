// PNGImage: the samples of a gray or RGB PNG, and their mapping to model units (INTERFACE "Value convention").

import DMiloKernels

/// Raw PNG samples: `height` rows of `width` pixels of `channels` (1 gray, 3 RGB) interleaved samples,
/// each in 0 ... 2^bitDepth − 1. Alpha is never kept (see `PNGImage.read`).
public struct PNGImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// 1 (gray) or 3 (RGB).
    public let channels: Int
    /// 8 or 16.
    public let bitDepth: Int
    /// Row-major, channel-interleaved (H, W, C) samples; 8-bit values are stored in the low byte.
    public var samples: [UInt16]

    /// An image from interleaved (H, W, C) samples. Throws `ImageShapeError` on inconsistent sizes or samples
    /// above 2^bitDepth − 1.
    public init(width: Int, height: Int, channels: Int, bitDepth: Int, samples: [UInt16]) throws {
        guard width > 0, height > 0 else { throw ImageShapeError("PNGImage: size \(width)x\(height) must be positive") }
        guard channels == 1 || channels == 3 else {
            throw ImageShapeError("PNGImage: \(channels) channels; only 1 (gray) or 3 (RGB) are written")
        }
        guard bitDepth == 8 || bitDepth == 16 else { throw ImageShapeError("PNGImage: bit depth \(bitDepth) is not 8 or 16") }
        guard samples.count == width * height * channels else {
            throw ImageShapeError("PNGImage: \(samples.count) samples for \(width)x\(height)x\(channels)")
        }
        if bitDepth == 8, let bad = samples.first(where: { $0 > 255 }) {
            throw ImageShapeError("PNGImage: sample \(bad) exceeds 255 in an 8-bit image")
        }
        self.width = width
        self.height = height
        self.channels = channels
        self.bitDepth = bitDepth
        self.samples = samples
    }

    /// Largest sample value, 2^bitDepth − 1.
    public var maxValue: Int { (1 << bitDepth) - 1 }

    /// The image in model units as a (C, H, W) tensor: v ↦ 2·v/(2^b − 1) − 1.
    public func modelUnits() -> Tensor {
        let t = Tensor(shape: [channels, height, width], zeroed: false)
        let plane = width * height
        let m = Float(maxValue)
        samples.withUnsafeBufferPointer { s in
            for p in 0..<plane {
                for c in 0..<channels { t.data[c * plane + p] = SampleMapping.modelUnit(s[p * channels + c], maxValue: m) }
            }
        }
        return t
    }

    /// Quantises a model-unit tensor — (C, H, W) with C = 1 or 3, or (H, W) — to a `bitDepth`-bit image with
    /// `SampleMapping.sample` (rounding, clipping to [−1, 1]; NaN becomes 0).
    public init(modelUnits t: Tensor, bitDepth: Int) throws {
        let (c, h, w): (Int, Int, Int)
        switch t.shape.count {
        case 2: (c, h, w) = (1, t.shape[0], t.shape[1])
        case 3: (c, h, w) = (t.shape[0], t.shape[1], t.shape[2])
        default: throw ImageShapeError("PNGImage: tensor of shape \(t.shape) is not (C,H,W) or (H,W)")
        }
        guard bitDepth == 8 || bitDepth == 16 else { throw ImageShapeError("PNGImage: bit depth \(bitDepth) is not 8 or 16") }
        let plane = h * w
        let m = Float((1 << bitDepth) - 1)
        var s = [UInt16](repeating: 0, count: c * plane)
        for p in 0..<plane {
            for ch in 0..<c { s[p * c + ch] = SampleMapping.sample(t.data[ch * plane + p], maxValue: m) }
        }
        try self.init(width: w, height: h, channels: c, bitDepth: bitDepth, samples: s)
    }
}

/// The PNG ↔ model-unit value convention of docs/INTERFACE.md: sample v of bit depth b ↔ 2·v/(2^b − 1) − 1.
public enum SampleMapping {
    /// Model units of sample `v` where `maxValue` = 2^b − 1.
    @inline(__always)
    public static func modelUnit(_ v: UInt16, maxValue: Float) -> Float { 2 * Float(v) / maxValue - 1 }

    /// The nearest sample to model-unit value `x`: round((x + 1)/2 · maxValue), with x clipped to [−1, 1]
    /// first. NaN maps to 0 (a solver that diverged must still produce a file someone can look at).
    @inline(__always)
    public static func sample(_ x: Float, maxValue: Float) -> UInt16 {
        guard x == x else { return 0 }
        let clipped = min(max(x, -1), 1)
        return UInt16(((clipped + 1) * 0.5 * maxValue).rounded(.toNearestOrAwayFromZero))
    }
}

/// An image or tensor had a shape this module cannot use (programmer or job error, not a file error).
public struct ImageShapeError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
