import DMiloKernels

/// Builds operators from manifest `operator` objects.
public enum OperatorFactory {
    /// Loads the array a manifest field names: `(fileName, fieldPath) throws -> Tensor`, e.g.
    /// `("mask.png", "operator.mask")`. The jobs layer resolves the name safely and reads NPY/PNG; its errors
    /// (`file.missing`, `file.unreadable`, ...) pass through. Masks must come back as raw values (0 = missing).
    public typealias ArrayLoader = (_ name: String, _ field: String) throws -> Tensor

    /// Parses `spec` (the manifest's `operator` object) strictly and builds the operator for `imageShape` [C, H, W].
    public static func make(
        spec: Any, imageShape: [Int],
        maxMatrixElements: Int = CompressedSensing.defaultMaxElements,
        loadArray: ArrayLoader
    ) throws -> any MeasurementOperator {
        try make(
            spec: OperatorSpec(json: spec), imageShape: imageShape, maxMatrixElements: maxMatrixElements,
            loadArray: loadArray)
    }

    /// Builds the operator of a parsed spec for `imageShape` [C, H, W]; shape-dependent checks happen here.
    public static func make(
        spec: OperatorSpec, imageShape: [Int],
        maxMatrixElements: Int = CompressedSensing.defaultMaxElements,
        loadArray: ArrayLoader
    ) throws -> any MeasurementOperator {
        try validateImageShape(imageShape)
        switch spec {
        case .denoise:
            return try Denoise(imageShape: imageShape)
        case let .superResolution(factor, kernel):
            return try SuperResolution(factor: factor, kernel: kernel, imageShape: imageShape)
        case .inpainting(.file(let name)):
            return try Inpainting(mask: loadArray(name, "operator.mask"), imageShape: imageShape)
        case let .inpainting(.random(fraction, seed)):
            return try Inpainting(missingFraction: fraction, maskSeed: seed, imageShape: imageShape)
        case let .inpainting(.box(x, y, w, h)):
            return try Inpainting(box: [x, y, w, h], imageShape: imageShape)
        case let .blur(name, geometry):
            return try Blur(kernel: loadArray(name, "operator.kernel"), imageShape: imageShape, geometry: geometry)
        case let .gaussianBlur(size, sigma, geometry):
            return try GaussianBlur(size: size, sigma: sigma, imageShape: imageShape, geometry: geometry)
        case let .motionBlur(.file(name), geometry):
            return try MotionBlur(kernel: loadArray(name, "operator.kernel"), imageShape: imageShape, geometry: geometry)
        case let .motionBlur(.random(size, intensity, seed), geometry):
            return try MotionBlur(size: size, intensity: intensity, kernelSeed: seed, imageShape: imageShape, geometry: geometry)
        case .compressedSensing(.file(let name)):
            return try CompressedSensing(
                matrix: loadArray(name, "operator.matrix"), imageShape: imageShape,
                maxElements: maxMatrixElements)
        case let .compressedSensing(.gaussian(ratio, seed)):
            return try CompressedSensing(
                ratio: ratio, matrixSeed: seed, imageShape: imageShape,
                maxElements: maxMatrixElements)
        case .hdr(let gain):
            return try HDR(gain: gain, imageShape: imageShape)
        }
    }
}
