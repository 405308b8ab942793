// RasterCanvas: an 8-bit gray or RGB pixel buffer that montages are painted on.

import DMiloKernels

struct RasterCanvas {
    let width: Int
    let height: Int
    /// 1 (gray) or 3 (RGB).
    let channels: Int
    /// (H, W, C) interleaved.
    var pixels: [UInt8]

    init(width: Int, height: Int, channels: Int, fill: UInt8) {
        self.width = width
        self.height = height
        self.channels = channels
        pixels = [UInt8](repeating: fill, count: width * height * channels)
    }

    /// Sets every channel of the pixels in the rectangle (clipped to the canvas) to `value`.
    mutating func fill(x: Int, y: Int, width w: Int, height h: Int, value: UInt8) {
        for r in max(0, y)..<min(height, y + h) where w > 0 {
            for c in max(0, x)..<min(width, x + w) {
                for k in 0..<channels { pixels[(r * width + c) * channels + k] = value }
            }
        }
    }

    /// Paints a (C, H, W) model-unit tensor (C = 1 or 3) at (x, y), each pixel a `factor`×`factor` block
    /// (nearest-neighbour upscaling). Gray is replicated into R, G and B on an RGB canvas.
    mutating func paint(_ t: Tensor, x: Int, y: Int, factor: Int) {
        let (c, h, w) = (t.shape[0], t.shape[1], t.shape[2])
        let plane = h * w
        for r in 0..<(h * factor) {
            let py = y + r
            guard py >= 0, py < height else { continue }
            let sr = r / factor
            for col in 0..<(w * factor) {
                let px = x + col
                guard px >= 0, px < width else { continue }
                let src = sr * w + col / factor
                let base = (py * width + px) * channels
                for k in 0..<channels {
                    let v = t.data[min(k, c - 1) * plane + src]
                    pixels[base + k] = UInt8(SampleMapping.sample(v, maxValue: 255))
                }
            }
        }
    }

    /// Draws `text` with the 5×7 font, top-left at (x, y), each font pixel `scale`×`scale`; characters that would
    /// cross `x + maxWidth` are left out.
    mutating func draw(_ text: String, x: Int, y: Int, scale: Int, maxWidth: Int, ink: UInt8) {
        var cx = x
        for ch in text {
            guard cx + BitmapFont.glyphWidth * scale <= x + maxWidth else { break }
            for (row, bits) in BitmapFont.glyph(ch).enumerated() {
                for col in 0..<BitmapFont.glyphWidth where bits & (0x10 >> UInt8(col)) != 0 {
                    fill(x: cx + col * scale, y: y + row * scale, width: scale, height: scale, value: ink)
                }
            }
            cx += BitmapFont.advance * scale
        }
    }

    func image() throws -> PNGImage {
        try PNGImage(width: width, height: height, channels: channels, bitDepth: 8, samples: pixels.map { UInt16($0) })
    }
}
