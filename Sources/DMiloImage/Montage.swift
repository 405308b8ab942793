// Montage: side-by-side pictures for done/NAME/montage.png (measurement | reconstruction | truth) and sample
// grids for `dmilo sample`. Output is an 8-bit PNGImage: RGB if any panel is RGB (gray panels are replicated
// into R, G, B), else gray.
//
// Geometry of `make`:
//   display height D = scale × (largest panel height). Each image panel of height h is upscaled by the integer
//   factor f = D / h (nearest neighbour, integer division), so a super-resolution measurement (C, H/4, W/4)
//   appears at the same size as the (C, H, W) reconstruction; if D is not a multiple of h the panel is
//   centred vertically in its D-pixel column.
//   A 1-D measurement (compressed sensing, shape (m,)) has no picture: it is shown as a D × D mid-gray panel
//   captioned "1-D MEASUREMENT" / "m VALUES" (the caption loses characters that do not fit a small panel).
//   Panels are separated, and framed, by `separator` white pixels. With labels, a white strip above the panels
//   holds each label centred over its panel in a 5×7 font scaled by max(1, D / 96).
//   With a header, lines of black text above everything (the job, its operator, method, budget, why the solver
//   stopped, PSNR/SSIM) say what the picture is without opening metrics.json; fields are wrapped to the width.
//   Pixels a panel's mask marks unobserved (inpainting) are drawn as a diagonal hatch, which no image value
//   produces, so missing data is never mistaken for mid-gray data.

import DMiloKernels

/// Builds montage and grid images from model-unit tensors.
public enum Montage {
    /// Background / separator value (white).
    static let background: UInt8 = 255
    /// Fill of a panel that stands for a measurement without a picture (mid gray).
    static let placeholderFill: UInt8 = 128
    /// Hatch of unobserved pixels: display pixels with (x + y) mod `hatchPeriod` == 0 are `hatchInk`, others white.
    static let hatchPeriod = 4
    static let hatchInk: UInt8 = 0

    private enum Panel {
        case image(Tensor)  // (C, H, W), C = 1 or 3
        case vector(count: Int)
    }

    /// Panels side by side at a common display height (see the file comment for the geometry).
    /// - Parameters:
    ///   - panels: model-unit tensors: (C, H, W) with C = 1 or 3, (H, W) gray, or (m,) for a 1-D measurement.
    ///   - labels: optional captions, one per panel.
    ///   - scale: integer upscaling of the largest panel (e.g. 4 makes a 32×32 image 128×128).
    ///   - separator: pixels between panels and around the montage.
    ///   - header: fields of the header line(s) (e.g. `JOB SR4`, `DMILO-PGD`), wrapped to the montage width.
    ///   - masks: per panel, nil or an (H·W) mask of an image panel (0 = unobserved, drawn hatched).
    public static func make(
        panels tensors: [Tensor], labels: [String]? = nil, scale: Int = 1,
        separator: Int = 4, header: [String] = [], masks: [[Float]?]? = nil
    ) throws -> PNGImage {
        guard !tensors.isEmpty else { throw ImageShapeError("Montage: no panels") }
        guard (1...64).contains(scale) else { throw ImageShapeError("Montage: scale \(scale) is not in 1...64") }
        guard (0...256).contains(separator) else { throw ImageShapeError("Montage: separator \(separator) is not in 0...256") }
        if let labels, labels.count != tensors.count {
            throw ImageShapeError("Montage: \(labels.count) labels for \(tensors.count) panels")
        }
        if let masks, masks.count != tensors.count {
            throw ImageShapeError("Montage: \(masks.count) masks for \(tensors.count) panels")
        }
        let panels = try tensors.map(panel)
        var tallest = 0, rgb = false
        for case .image(let t) in panels {
            tallest = max(tallest, t.shape[1])
            rgb = rgb || t.shape[0] == 3
        }
        let display = scale * (tallest > 0 ? tallest : 32)
        guard display <= 16384 else { throw ImageShapeError("Montage: display height \(display) is too large") }
        let widths = panels.map { p -> Int in
            switch p {
            case .image(let t): return t.shape[2] * (display / t.shape[1])
            case .vector: return display
            }
        }
        let textScale = max(1, display / 96)
        let labelStrip = labels == nil ? 0 : (BitmapFont.glyphHeight + 4) * textScale
        let width = widths.reduce(0, +) + separator * (panels.count + 1)
        let lineHeight = (BitmapFont.glyphHeight + 3) * textScale
        let headerLines = wrap(header, width: width - 2 * separator - 2 * textScale, scale: textScale)
        let headerStrip = headerLines.count * lineHeight
        let strip = headerStrip + labelStrip
        let height = display + strip + 2 * separator
        guard width <= 65536 else { throw ImageShapeError("Montage: width \(width) is too large") }

        var canvas = RasterCanvas(width: width, height: height, channels: rgb ? 3 : 1, fill: background)
        for (i, line) in headerLines.enumerated() {
            canvas.draw(
                line, x: separator + textScale, y: separator + i * lineHeight + 2 * textScale, scale: textScale,
                maxWidth: width - 2 * separator, ink: 0)
        }
        var x = separator
        let top = separator + strip
        for (i, p) in panels.enumerated() {
            switch p {
            case .image(let t):
                let f = display / t.shape[1]
                canvas.paint(t, x: x, y: top + (display - t.shape[1] * f) / 2, factor: f)
                if let mask = masks?[i] {
                    guard mask.count == t.shape[1] * t.shape[2] else {
                        throw ImageShapeError(
                            "Montage: a mask of \(mask.count) values for a \(t.shape[1])x\(t.shape[2])"
                                + " panel")
                    }
                    hatch(
                        mask, width: t.shape[2], on: &canvas, x: x, y: top + (display - t.shape[1] * f) / 2,
                        factor: f)
                }
            case .vector(let m):
                canvas.fill(x: x, y: top, width: display, height: display, value: placeholderFill)
                drawCentred(
                    ["1-D", "MEASUREMENT", "\(m) VALUES"], on: &canvas, x: x, width: display,
                    y: top + display / 2 - 3 * BitmapFont.glyphHeight * textScale / 2, scale: textScale)
            }
            if let labels {
                drawCentred(
                    [labels[i]], on: &canvas, x: x, width: widths[i],
                    y: separator + headerStrip + 2 * textScale, scale: textScale)
            }
            x += widths[i] + separator
        }
        return try canvas.image()
    }

    /// Images of one size in a grid, row by row, `columns` per row, each upscaled by `scale`, `separator` white
    /// pixels between and around cells. Gray images are replicated into RGB when any image is RGB.
    /// - Parameter images: model-unit tensors (C, H, W) with C = 1 or 3, or (H, W), all with the same H and W.
    public static func grid(images tensors: [Tensor], columns: Int, scale: Int = 1, separator: Int = 2) throws -> PNGImage {
        guard !tensors.isEmpty else { throw ImageShapeError("Montage.grid: no images") }
        guard columns >= 1 else { throw ImageShapeError("Montage.grid: columns \(columns) < 1") }
        guard (1...64).contains(scale) else { throw ImageShapeError("Montage.grid: scale \(scale) is not in 1...64") }
        guard (0...256).contains(separator) else { throw ImageShapeError("Montage.grid: separator \(separator) is not in 0...256") }
        var images = [Tensor]()
        for t in tensors {
            guard case .image(let image) = try panel(t) else {
                throw ImageShapeError("Montage.grid: shape \(t.shape) is not an image")
            }
            images.append(image)
        }
        let (h, w) = (images[0].shape[1], images[0].shape[2])
        if let odd = images.first(where: { $0.shape[1] != h || $0.shape[2] != w }) {
            throw ImageShapeError("Montage.grid: image of \(odd.shape[1])x\(odd.shape[2]) among \(h)x\(w) images")
        }
        let cols = min(columns, images.count)
        let rows = (images.count + columns - 1) / columns
        let width = separator + cols * (w * scale + separator)
        let height = separator + rows * (h * scale + separator)
        guard width <= 65536, height <= 65536 else { throw ImageShapeError("Montage.grid: \(width)x\(height) is too large") }
        let rgb = images.contains { $0.shape[0] == 3 }
        var canvas = RasterCanvas(width: width, height: height, channels: rgb ? 3 : 1, fill: background)
        for (i, t) in images.enumerated() {
            canvas.paint(
                t, x: separator + (i % columns) * (w * scale + separator),
                y: separator + (i / columns) * (h * scale + separator), factor: scale)
        }
        return try canvas.image()
    }

    /// A grid of the B images of a (B, C, H, W) batch.
    public static func grid(batch: Tensor, columns: Int, scale: Int = 1, separator: Int = 2) throws -> PNGImage {
        guard batch.shape.count == 4, batch.shape[0] > 0 else {
            throw ImageShapeError("Montage.grid: batch shape \(batch.shape) is not (B,C,H,W)")
        }
        let per = batch.count / batch.shape[0]
        let images = (0..<batch.shape[0]).map { b in
            let t = Tensor(shape: Array(batch.shape.dropFirst()), zeroed: false)
            t.data.update(from: batch.data + b * per, count: per)
            return t
        }
        return try grid(images: images, columns: columns, scale: scale, separator: separator)
    }

    /// Classifies a tensor: (C,H,W) with C 1 or 3 and (H,W) are images, (m,) a 1-D measurement.
    private static func panel(_ t: Tensor) throws -> Panel {
        switch t.shape.count {
        case 1:
            return .vector(count: t.shape[0])
        case 2 where t.shape[0] > 0 && t.shape[1] > 0:
            let g = Tensor(shape: [1] + t.shape, zeroed: false)
            g.assign(t)
            return .image(g)
        case 3 where (t.shape[0] == 1 || t.shape[0] == 3) && t.shape[1] > 0 && t.shape[2] > 0:
            return .image(t)
        default:
            throw ImageShapeError("Montage: a panel of shape \(t.shape) is not (C,H,W) with C = 1 or 3, (H,W) or (m,)")
        }
    }

    /// Covers each unobserved pixel's f×f block with the hatch (its phase follows canvas coordinates, so
    /// neighbouring blocks join into continuous diagonal lines).
    private static func hatch(
        _ mask: [Float], width w: Int, on canvas: inout RasterCanvas, x: Int, y: Int,
        factor f: Int
    ) {
        for (p, m) in mask.enumerated() where m == 0 {
            let (bx, by) = (x + (p % w) * f, y + (p / w) * f)
            for r in by..<(by + f) {
                for c in bx..<(bx + f) {
                    let v = (c + r) % hatchPeriod == 0 ? hatchInk : background
                    canvas.fill(x: c, y: r, width: 1, height: 1, value: v)
                }
            }
        }
    }

    /// Header fields packed into lines no wider than `width` pixels, two spaces between fields; a field wider than
    /// a line gets a line of its own (and is cut when drawn).
    static func wrap(_ fields: [String], width: Int, scale: Int) -> [String] {
        var lines: [String] = []
        for field in fields where !field.isEmpty {
            if let last = lines.last, BitmapFont.width(of: last + "  " + field, scale: scale) <= width {
                lines[lines.count - 1] = last + "  " + field
            } else {
                lines.append(field)
            }
        }
        return lines
    }

    /// Draws lines of text, each centred horizontally in [x, x + width), stacked from y.
    private static func drawCentred(_ lines: [String], on canvas: inout RasterCanvas, x: Int, width: Int, y: Int, scale: Int) {
        for (i, line) in lines.enumerated() {
            let w = min(BitmapFont.width(of: line, scale: scale), width)
            canvas.draw(
                line, x: x + (width - w) / 2, y: y + i * (BitmapFont.glyphHeight + 2) * scale,
                scale: scale, maxWidth: width, ink: 0)
        }
    }
}
