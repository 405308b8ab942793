import DMiloFormats
import DMiloImage
import DMiloKernels
import Foundation

/// A measurement as read from a job's file, in model units.
public struct LoadedMeasurement {
    /// y, shaped like the file ((C,H,W), (H,W) or (m,)); reshaped to the operator's output shape by `conform`.
    public var y: Tensor
    /// Bit depth when the measurement was a PNG (results are written at the same depth), else nil.
    public var pngBitDepth: Int?
}

/// Reading a job's input files: measurement, truth and operator arrays (docs/INTERFACE.md "The manifest, version 1").
/// Every check happens before any large allocation, and every error names the file and the manifest field.
public enum JobInputs {
    /// PNG limits for measurements and truths: nothing a sensor of this daemon produces is larger.
    public static let pngLimits = PNGLimits(maxWidth: 8192, maxHeight: 8192, maxPixels: 1 << 24, maxFileBytes: 256 << 20)

    /// Decodes a measurement file (`.png` or `.npy`) into model units.
    public static func measurement(
        _ data: Data, name: String, field: String = "measurement",
        limits: PNGLimits = pngLimits
    ) throws -> LoadedMeasurement {
        switch fileKind(name) {
        case .png:
            let img = try decodePNG(data, name: name, field: field, limits: limits)
            return LoadedMeasurement(y: img.modelUnits(), pngBitDepth: img.bitDepth)
        case .npy:
            let t = try decodeNPY(data, name: name, field: field)
            return LoadedMeasurement(y: t, pngBitDepth: nil)
        case .other:
            throw JobError(
                code: JobError.fileUnreadable,
                message: "\(name) (field `\(field)`): measurement must be a .png or .npy file", field: field)
        }
    }

    /// Decodes a truth image (PNG or NPY) into model units, shape (C,H,W); `convert` applies the manifest's `color`.
    public static func truth(
        _ data: Data, name: String, imageShape: [Int],
        convert: (Tensor) -> Tensor = { $0 }
    ) throws -> Tensor {
        let m = try measurement(data, name: name, field: "truth", limits: InputLimits.png(forImage: imageShape))
        return try conform(convert(m.y), to: imageShape, name: name, field: "truth", code: "truth.shape")
    }

    /// An operator array (`mask`, `kernel`, `matrix`). PNG masks keep their RAW sample values (0 = missing),
    /// not model units, because the operators treat any nonzero value as observed.
    public static func operatorArray(_ data: Data, name: String, field: String, limits: PNGLimits = pngLimits) throws -> Tensor {
        switch fileKind(name) {
        case .png:
            let img = try decodePNG(data, name: name, field: field, limits: limits)
            guard img.channels == 1 else {
                throw JobError(code: "file.invalid", message: "\(name) (field `\(field)`): a PNG mask must be grayscale", field: field)
            }
            return Tensor(shape: [img.height, img.width], values: img.samples.map { Float($0) })
        case .npy:
            return try decodeNPY(data, name: name, field: field)
        case .other:
            throw JobError(
                code: JobError.fileUnreadable,
                message: "\(name) (field `\(field)`): operator files must be .npy (masks may also be .png)", field: field)
        }
    }

    /// Reshapes y to `shape` when only leading singleton dimensions differ ((H,W) for a 1-channel (1,H,W)).
    public static func conform(
        _ y: Tensor, to shape: [Int], name: String, field: String,
        code: String = "measurement.shape"
    ) throws -> Tensor {
        if y.shape == shape { return y }
        let squeezed = { (s: [Int]) in Array(s.drop(while: { $0 == 1 })) }
        if squeezed(y.shape) == squeezed(shape), y.count == shape.reduce(1, *) {
            return y.copy().reshape(shape)
        }
        throw JobError(
            code: code,
            message: "\(name) (field `\(field)`) has shape \(y.shape) but the operator needs \(shape)", field: field)
    }

    // MARK: - decoding

    enum Kind { case png, npy, other }
    static func fileKind(_ name: String) -> Kind {
        let lower = name.lowercased()
        if lower.hasSuffix(".png") { return .png }
        if lower.hasSuffix(".npy") { return .npy }
        return .other
    }

    static func decodePNG(_ data: Data, name: String, field: String, limits: PNGLimits = pngLimits) throws -> PNGImage {
        do {
            return try PNGImage.decode([UInt8](data), path: name, limits: limits)
        } catch let e as PNGError {
            throw JobError(code: e.code, message: "\(e.message) (field `\(field)`)", field: field)
        }
    }

    static func decodeNPY(_ data: Data, name: String, field: String) throws -> Tensor {
        let arr: NPY.Array
        do {
            arr = try data.withUnsafeBytes { try NPY.decode($0, name: name) }
        } catch {
            throw JobError(code: JobError.fileUnreadable, message: "\(error) (field `\(field)`)", field: field)
        }
        guard !arr.shape.isEmpty, arr.shape.count <= 3 else {
            throw JobError(
                code: "measurement.shape",
                message: "\(name) (field `\(field)`): expected 1 to 3 dimensions, got shape \(arr.shape)", field: field)
        }
        if let bad = arr.values.firstIndex(where: { !$0.isFinite }) {
            throw JobError(
                code: "measurement.nonfinite",
                message: "\(name) (field `\(field)`): element \(bad) is \(arr.values[bad]); NaN and Inf are refused",
                field: field)
        }
        return Tensor(shape: arr.shape, values: arr.values)
    }
}
