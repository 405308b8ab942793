import DMiloImage
import DMiloKernels
import DMiloOperators
import Foundation

/// Manifest `color`: how a measurement whose channel count differs from the model's is converted
/// (docs/INTERFACE.md "The manifest, version 1"). Without it, a channel mismatch is `measurement.shape`.
public enum ColorConversion: String, Sendable, CaseIterable {
    /// RGB measurement, 1-channel model: ITU-R BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B.
    case luma
    /// Gray measurement, 3-channel model: the one channel copied to R, G and B.
    case replicate

    /// ITU-R BT.601 luma weights (R, G, B). They sum to 1, so the same weights hold in model units [−1, 1] and
    /// on [0, 1] samples (the affine map between the two commutes with a convex combination).
    public static let lumaWeights: [Float] = [0.299, 0.587, 0.114]
}

/// The model defines the image shape; the operator maps it to the measurement shape it expects. A measurement is
/// checked against that expectation here, where it is read, so every refusal names all three: the model's image,
/// the operator's measurement for that image, and what the file holds.
public struct MeasurementGeometry: Sendable {
    /// (C, H, W) of the model's images.
    public var imageShape: [Int]
    /// The operator's output shape for `imageShape` (`op.outputShape`).
    public var expected: [Int]
    /// The operator as a user wrote it, e.g. `super_resolution (factor 2)`.
    public var operatorDescription: String
    public var color: ColorConversion?
    /// The manifest's file name, for `manifest.invalid` on `color`.
    public var manifestFile: String

    public init(
        imageShape: [Int], expected: [Int], operatorDescription: String, color: ColorConversion?,
        manifestFile: String
    ) {
        self.imageShape = imageShape
        self.expected = expected
        self.operatorDescription = operatorDescription
        self.color = color
        self.manifestFile = manifestFile
    }

    /// `[1,32,32]`: shapes written the way numpy users type them, without spaces.
    static func text(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ",") + "]" }

    /// The operator of a manifest as a user would name it: its type plus the parameter that changes the shape.
    public static func describe(_ spec: OperatorSpec) -> String {
        switch spec {
        case .superResolution(let f, _): return "super_resolution (factor \(f))"
        case .compressedSensing(.gaussian(let ratio, _)): return "compressed_sensing (ratio \(ratio))"
        case .blur(_, .paper), .gaussianBlur(_, _, .paper), .motionBlur(_, .paper):
            return "\(spec.type) (geometry paper)"
        default: return spec.type
        }
    }

    /// Reads a measurement (`.png` or `.npy`) and returns it shaped exactly `expected`, converted by `color`.
    /// A PNG is checked from its header before anything is decoded: beyond `JobInputs.pngLimits` it is
    /// `image.too_large` (a decompression bomb), otherwise a size that does not fit is `measurement.shape`.
    public func read(_ data: Data, name: String, field: String = "measurement") throws -> LoadedMeasurement {
        let limits = JobInputs.pngLimits
        if JobInputs.fileKind(name) == .png {
            let header: PNGHeader
            do { header = try PNGHeader.parse([UInt8](data), path: name) } catch let e as PNGError {
                throw JobError(code: e.code, message: "\(e.message) (field `\(field)`)", field: field)
            }
            let (w, h) = (header.width, header.height)
            if w > limits.maxWidth || h > limits.maxHeight || w * h > limits.maxPixels {
                let limit = "\(limits.maxWidth)x\(limits.maxHeight) and \(limits.maxPixels) pixels"
                throw JobError(
                    code: "image.too_large",
                    message: "\(name) (field `\(field)`): the PNG header states "
                        + "\(w)x\(h) pixels, over the limit of \(limit); it was not decoded", field: field)
            }
            // Only the size is decided from the header: the channels libpng returns (a palette may be gray) are
            // checked after decoding, by `fit`.
            if expected.count != 3 || Array(expected.suffix(2)) != [h, w] {
                try check([header.channels, h, w], name: name, field: field)
            }
        }
        var m = try JobInputs.measurement(data, name: name, field: field, limits: limits)
        m.y = try fit(m.y, name: name, field: field)
        return m
    }

    /// Checks `y` against `expected` and returns it reshaped ((H, W) → (1, H, W)) and colour-converted.
    public func fit(_ y: Tensor, name: String, field: String = "measurement") throws -> Tensor {
        try check(y.shape, name: name, field: field)
        let squeezed = { (s: [Int]) in Array(s.drop(while: { $0 == 1 })) }
        if y.shape == expected { return y }
        if squeezed(y.shape) == squeezed(expected), y.count == expected.reduce(1, *) {
            return y.copy().reshape(expected)
        }
        let (h, w) = (expected[1], expected[2])
        let plane = h * w
        switch color {
        case .luma?:  // (3, H, W) → (1, H, W)
            let out = Tensor(shape: expected, zeroed: true)
            for (c, wc) in ColorConversion.lumaWeights.enumerated() {
                for p in 0..<plane { out[p] += wc * y[c * plane + p] }
            }
            return out
        case .replicate?:  // (H, W) or (1, H, W) → (3, H, W)
            let out = Tensor(shape: expected, zeroed: false)
            for c in 0..<3 { for p in 0..<plane { out[c * plane + p] = y[p] } }
            return out
        case nil:
            throw JobError(
                code: JobError.internalError,
                message: "\(name): shape \(Self.text(y.shape)) passed the "
                    + "check but could not be fitted to \(Self.text(expected))", field: field)
        }
    }

    /// Throws `measurement.shape` (or `manifest.invalid` on a `color` that does not apply) unless `given` fits
    /// `expected` as is, up to leading singleton dimensions, or through the manifest's `color`.
    func check(_ given: [Int], name: String, field: String) throws {
        let squeezed = { (s: [Int]) in Array(s.drop(while: { $0 == 1 })) }
        let isImage = expected.count == 3
        let spatialFits = isImage && given.count >= 2 && Array(given.suffix(2)) == Array(expected.suffix(2))
        let givenChannels = given.count == 3 ? given[0] : (given.count == 2 ? 1 : 0)
        let modelChannels = imageShape.first ?? 1
        if let color {
            let needs: (measurement: Int, model: Int) = color == .luma ? (3, 1) : (1, 3)
            let what =
                color == .luma
                ? "turns an RGB (3-channel) measurement into gray for a 1-channel model"
                : "copies a gray (1-channel) measurement to the 3 channels of an RGB model"
            guard isImage, modelChannels == needs.model, !spatialFits || givenChannels == needs.measurement else {
                let has =
                    givenChannels == 0
                    ? "shape \(Self.text(given))"
                    : "\(givenChannels) channel\(givenChannels == 1 ? "" : "s")"
                let got =
                    isImage
                    ? "\(name) has \(has) and the model makes \(Self.text(imageShape)) images"
                    : "\(operatorDescription) measures a vector, not an image"
                throw JobError.manifest(
                    "\(manifestFile): `color` \"\(color.rawValue)\" \(what), but \(got)",
                    field: "color")
            }
            if spatialFits { return }
        } else if given == expected
            || (squeezed(given) == squeezed(expected)
                && given.reduce(1, *) == expected.reduce(1, *))
        {
            return
        }
        var message =
            "\(name): shape \(Self.text(given)) does not fit \(operatorDescription) on this model: the "
            + "model makes \(Self.text(imageShape)) images, so the operator expects a \(Self.text(expected)) measurement"
        if spatialFits, color == nil, givenChannels == 3, modelChannels == 1 {
            message += " (for an RGB measurement on this gray model, set \"color\": \"luma\" in the manifest)"
        } else if spatialFits, color == nil, givenChannels == 1, modelChannels == 3 {
            message += " (for a gray measurement on this RGB model, set \"color\": \"replicate\" in the manifest)"
        }
        throw JobError(code: JobError.measurementShape, message: message, field: field)
    }
}

extension MeasurementGeometry {
    /// The manifest's `color` applied to a `truth` image with the measurement's channel count, so PSNR and SSIM
    /// compare like with like; any other truth is returned as is (and refused with `truth.shape` if it does not fit).
    public func convertTruth(_ t: Tensor) -> Tensor {
        guard let color, t.shape.count >= 2, Array(t.shape.suffix(2)) == Array(imageShape.suffix(2)) else { return t }
        let channels = t.shape.count == 3 ? t.shape[0] : 1
        guard channels == (color == .luma ? 3 : 1), imageShape.first == (color == .luma ? 1 : 3) else { return t }
        let g = MeasurementGeometry(
            imageShape: imageShape, expected: imageShape, operatorDescription: "truth",
            color: color, manifestFile: manifestFile)
        return (try? g.fit(t, name: "truth", field: "truth")) ?? t
    }
}
