import DMiloFormats
import DMiloKernels

/// The operators a manifest can name (`operator.type`): the one list, so adding an operator means a case here, its
/// parsing in ``OperatorSpec/init(json:)-JSONValue``, its construction in ``OperatorFactory`` and its file.
public enum OperatorKind: String, CaseIterable, Sendable {
    case denoise
    case superResolution = "super_resolution"
    case inpainting
    case blur
    case gaussianBlur = "gaussian_blur"
    case motionBlur = "motion_blur"
    case compressedSensing = "compressed_sensing"
    case hdr

    /// The convolution family (DMILO-PGD takes un-squared data steps on these, as the official code does).
    public var isBlur: Bool { self == .blur || self == .gaussianBlur || self == .motionBlur }
}

/// The manifest's `operator` object, validated and typed (docs/INTERFACE.md "The manifest, version 1").
/// Files (mask, kernel, matrix) are still names here; ``OperatorFactory`` loads them through the caller's closure.
public enum OperatorSpec: Sendable, Equatable {
    case denoise
    case superResolution(factor: Int, kernel: SuperResolution.Kernel)
    case inpainting(InpaintingMask)
    case blur(kernelFile: String, geometry: BlurGeometry = .same)
    case gaussianBlur(size: Int, sigma: Double, geometry: BlurGeometry = .same)
    case motionBlur(MotionKernelSource, geometry: BlurGeometry = .same)
    case compressedSensing(SensingMatrix)
    case hdr(gain: Double)

    /// `inpainting`: exactly one of `mask`, `missing_fraction` (+ `mask_seed`), `box`.
    public enum InpaintingMask: Sendable, Equatable {
        case file(String)
        case random(missingFraction: Double, seed: UInt64)
        case box(x: Int, y: Int, width: Int, height: Int)
    }

    /// `motion_blur`: `kernel` or `size` + `intensity` + `kernel_seed`.
    public enum MotionKernelSource: Sendable, Equatable {
        case file(String)
        case random(size: Int, intensity: Double, seed: UInt64)
    }

    /// `compressed_sensing`: `matrix` or `ratio` + `matrix_seed`.
    public enum SensingMatrix: Sendable, Equatable {
        case file(String)
        case gaussian(ratio: Double, seed: UInt64)
    }

    /// Every `operator.type` value.
    public static let types = OperatorKind.allCases.map(\.rawValue)

    public var type: String { kind.rawValue }

    public var kind: OperatorKind {
        switch self {
        case .denoise: return .denoise
        case .superResolution: return .superResolution
        case .inpainting: return .inpainting
        case .blur: return .blur
        case .gaussianBlur: return .gaussianBlur
        case .motionBlur: return .motionBlur
        case .compressedSensing: return .compressedSensing
        case .hdr: return .hdr
        }
    }

    /// Parses and validates an `operator` object built in Swift or given by `JSONSerialization` (`[String: Any]`);
    /// see ``init(json:)-JSONValue``.
    public init(json: Any) throws {
        guard let value = JSONValue(foundation: json) else {
            throw OperatorError.invalid("operator", "operator must be a JSON object, got \(Swift.type(of: json))")
        }
        try self.init(json: value)
    }

    /// Parses and validates an `operator` object (from the manifest's strict JSON reader). Unknown keys,
    /// missing or mistyped fields, conflicting alternatives and out-of-range values throw ``OperatorError`` with
    /// code `manifest.invalid` (or `operator.unknown` for the type) and field `operator.<key>`.
    /// Checks that need the image shape (divisibility, kernel size, box bounds) happen in ``make(imageShape:maxMatrixElements:loadArray:)``.
    public init(json: JSONValue) throws {
        let f = try JSONFields(json, prefix: "operator")
        guard f.has("type") else {
            throw OperatorError.invalid("operator.type", "missing required field operator.type (one of \(OperatorSpec.types.joined(separator: ", ")))")
        }
        let type = try f.string("type")
        guard let kind = OperatorKind(rawValue: type) else {
            throw OperatorError(
                code: "operator.unknown",
                message: "unknown operator type \"\(type)\" (known: \(OperatorSpec.types.joined(separator: ", ")))",
                field: "operator.type")
        }
        func allow(_ keys: [String]) throws { try f.rejectUnknown(["type"] + keys, context: "operator type \(type)") }
        /// Exactly one of the alternatives must be present.
        func choose(_ options: [String]) throws -> String {
            let present = options.filter { f.has($0) }
            guard present.count == 1 else {
                let list = options.map { "operator.\($0)" }.joined(separator: ", ")
                throw OperatorError.invalid(
                    present.count > 1 ? f.path(present[1]) : "operator",
                    present.isEmpty ? "\(type) needs one of \(list)" : "\(type) takes only one of \(list), got \(present.count)")
            }
            return present[0]
        }
        /// Blur border geometry: `same` (default) or `paper`.
        func geometry() throws -> BlurGeometry {
            guard f.has("geometry") else { return .same }
            let name = try f.string("geometry")
            guard let g = BlurGeometry(rawValue: name) else {
                throw OperatorError.invalid("operator.geometry", "operator.geometry must be one of \(BlurGeometry.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(name)\"")
            }
            return g
        }
        /// `key` may only appear together with `owner`.
        func only(_ key: String, with owner: String) throws {
            if f.has(key) && !f.has(owner) {
                throw OperatorError.invalid(f.path(key), "operator.\(key) is only valid together with operator.\(owner)")
            }
        }

        switch kind {
        case .denoise:
            try allow([])
            self = .denoise
        case .superResolution:
            try allow(["factor", "kernel"])
            let factor = try f.int("factor")
            guard factor == 2 || factor == 4 else {
                throw OperatorError.invalid("operator.factor", "super-resolution factor must be 2 or 4, got \(factor)")
            }
            var kernel = SuperResolution.Kernel.bicubic
            if f.has("kernel") {
                let name = try f.string("kernel")
                guard let k = SuperResolution.Kernel(rawValue: name) else {
                    throw OperatorError.invalid("operator.kernel", "super-resolution kernel must be \"bicubic\" or \"box\", got \"\(name)\"")
                }
                kernel = k
            }
            self = .superResolution(factor: factor, kernel: kernel)
        case .inpainting:
            try allow(["mask", "missing_fraction", "mask_seed", "box"])
            try only("mask_seed", with: "missing_fraction")
            switch try choose(["mask", "missing_fraction", "box"]) {
            case "mask": self = .inpainting(.file(try f.string("mask")))
            case "missing_fraction":
                let fraction = try f.double("missing_fraction")
                guard fraction >= 0, fraction < 1 else {
                    throw OperatorError.invalid("operator.missing_fraction", "missing_fraction must be in [0, 1), got \(fraction)")
                }
                self = .inpainting(.random(missingFraction: fraction, seed: try f.seed("mask_seed")))
            default:
                let b = try f.intArray("box", count: 4)
                guard b[0] >= 0, b[1] >= 0, b[2] >= 1, b[3] >= 1 else {
                    throw OperatorError.invalid("operator.box", "box [x, y, w, h] needs x, y >= 0 and w, h >= 1, got \(b)")
                }
                self = .inpainting(.box(x: b[0], y: b[1], width: b[2], height: b[3]))
            }
        case .blur:
            try allow(["kernel", "geometry"])
            self = .blur(kernelFile: try f.string("kernel"), geometry: try geometry())
        case .gaussianBlur:
            try allow(["size", "sigma", "geometry"])
            let size = try f.int("size"), sigma = try f.double("sigma")
            _ = try GaussianBlur.kernel(size: size, sigma: sigma)  // validates size and sigma
            self = .gaussianBlur(size: size, sigma: sigma, geometry: try geometry())
        case .motionBlur:
            try allow(["kernel", "size", "intensity", "kernel_seed", "geometry"])
            try only("intensity", with: "size")
            try only("kernel_seed", with: "size")
            if try choose(["kernel", "size"]) == "kernel" {
                self = .motionBlur(.file(try f.string("kernel")), geometry: try geometry())
            } else {
                let size = try f.int("size"), intensity = try f.double("intensity"), seed = try f.seed("kernel_seed")
                guard size >= 1, size <= 255, size % 2 == 1 else {
                    throw OperatorError.invalid("operator.size", "motion_blur size must be an odd integer in 1...255, got \(size)")
                }
                guard intensity >= 0, intensity <= 1 else {
                    throw OperatorError.invalid("operator.intensity", "motion_blur intensity must be in [0, 1], got \(intensity)")
                }
                self = .motionBlur(.random(size: size, intensity: intensity, seed: seed), geometry: try geometry())
            }
        case .compressedSensing:
            try allow(["matrix", "ratio", "matrix_seed"])
            try only("matrix_seed", with: "ratio")
            if try choose(["matrix", "ratio"]) == "matrix" {
                self = .compressedSensing(.file(try f.string("matrix")))
            } else {
                let ratio = try f.double("ratio")
                guard ratio > 0, ratio <= 1 else {
                    throw OperatorError.invalid("operator.ratio", "compressed-sensing ratio must be in (0, 1], got \(ratio)")
                }
                self = .compressedSensing(.gaussian(ratio: ratio, seed: try f.seed("matrix_seed")))
            }
        case .hdr:
            try allow(["gain"])
            let gain = try f.double("gain")
            guard gain > 0, Float(gain).isFinite else {
                throw OperatorError.invalid("operator.gain", "gain must be a finite number > 0, got \(gain)")
            }
            self = .hdr(gain: gain)
        }
    }

    /// The data files this operator names, with the manifest field of each (so a spool can wait for them).
    public var files: [(field: String, name: String)] {
        switch self {
        case .inpainting(.file(let n)): return [("operator.mask", n)]
        case .blur(let n, _): return [("operator.kernel", n)]
        case .motionBlur(.file(let n), _): return [("operator.kernel", n)]
        case .compressedSensing(.file(let n)): return [("operator.matrix", n)]
        default: return []
        }
    }

    /// The border geometry of a blur operator (nil for the others).
    public var blurGeometry: BlurGeometry? {
        switch self {
        case .blur(_, let g), .gaussianBlur(_, _, let g), .motionBlur(_, let g): return g
        default: return nil
        }
    }

    /// The canonical JSON object (defaults filled in), e.g. for `metrics.json` or a simulated manifest.
    public var jsonObject: [String: Any] {
        var o: [String: Any] = ["type": type]
        switch self {
        case .denoise: break
        case let .superResolution(factor, kernel): o["factor"] = factor; o["kernel"] = kernel.rawValue
        case .inpainting(.file(let n)): o["mask"] = n
        case let .inpainting(.random(fraction, seed)): o["missing_fraction"] = fraction; o["mask_seed"] = seed
        case let .inpainting(.box(x, y, w, h)): o["box"] = [x, y, w, h]
        case let .blur(n, _): o["kernel"] = n
        case let .gaussianBlur(size, sigma, _): o["size"] = size; o["sigma"] = sigma
        case let .motionBlur(.file(n), _): o["kernel"] = n
        case let .motionBlur(.random(size, intensity, seed), _):
            o["size"] = size; o["intensity"] = intensity; o["kernel_seed"] = seed
        case .compressedSensing(.file(let n)): o["matrix"] = n
        case let .compressedSensing(.gaussian(ratio, seed)): o["ratio"] = ratio; o["matrix_seed"] = seed
        case .hdr(let gain): o["gain"] = gain
        }
        if let g = blurGeometry, g != .same { o["geometry"] = g.rawValue }  // default left implicit
        return o
    }
}
