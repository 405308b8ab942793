import DMiloFormats
import DMiloOperators
import Foundation

/// The strict JSON value of the manifest reader (defined with the reader in DMiloFormats).
public typealias JSONValue = DMiloFormats.JSONValue

/// A job manifest, version 1 (docs/INTERFACE.md). Parsing is strict: unknown keys at the top level and in `solver`
/// are errors; `operator` is kept raw (its keys belong to the operators layer) apart from its `type`.
public struct Manifest: Sendable, Equatable {
    public var version: Int
    /// File reference of the measurement (plain name or `calibration/FILE`).
    public var measurement: FileReference
    /// `operator.type`.
    public var operatorType: String
    /// The whole `operator` object, `type` included, for the operators layer to validate.
    public var operatorObject: [String: JSONValue]
    public var noiseSigma: Double
    public var solver: SolverSettings?
    public var truth: FileReference?
    public var seed: UInt64
    /// Optional `image_shape` [C, H, W] overriding the model's.
    public var imageShape: [Int]?
    /// Optional `model`: the name of a model in the daemon's config `models` (nil = `default`).
    public var model: String?
    /// Optional `color`: converts a measurement whose channel count differs from the model's (`MeasurementGeometry`).
    public var color: ColorConversion?
    /// The manifest's bytes as read (for echoing).
    public var source = Data()

    /// The `operator` object in Foundation form (`[String: Any]` with `NSNumber`s whose `objCType` tells booleans,
    /// integers and reals apart), as `JSONSerialization` would give it; built from the one parse, not re-read.
    public var operatorJSONObject: Any { operatorObject.mapValues(\.foundationValue) }

    /// Every top-level key a version-1 manifest may hold.
    public static let keys: Set<String> = [
        "version", "measurement", "operator", "noise_sigma", "solver", "truth",
        "seed", "image_shape", "model", "color",
    ]
    public static let requiredKeys: Set<String> = ["version", "measurement", "operator"]
    /// Operator types (the operator layer's ``OperatorKind``); other values are `operator.unknown`.
    public static let operatorTypes: Set<String> = Set(OperatorSpec.types)
    /// Keys of `operator` whose string values name files (resolved like `measurement`).
    public static let operatorFileKeys: [String] = ["mask", "kernel", "matrix"]

    /// Parses manifest bytes. `file` is the manifest's name, used in error messages.
    public static func parse(_ data: Data, file: String) throws -> Manifest {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch let e as JSONSyntaxError {
            throw JobError.manifest("\(file) is not valid JSON: \(e)")
        }
        guard let o = root.objectValue else {
            throw JobError.manifest("\(file): the manifest must be a JSON object, not \(root.typeName)")
        }
        for key in o.keys.sorted() where !keys.contains(key) {
            throw JobError.manifest(
                "\(file): unknown key `\(key)` (allowed: \(keys.sorted().joined(separator: ", ")))",
                field: key)
        }
        for key in requiredKeys.sorted() where o[key] == nil {
            throw JobError.manifest("\(file): required key `\(key)` is missing", field: key)
        }
        guard let version = o["version"]?.intValue else {
            throw JobError.manifest("\(file): `version` must be the integer 1", field: "version")
        }
        guard version == 1 else {
            throw JobError.manifest(
                "\(file): unsupported manifest version \(version) (this daemon reads version 1)",
                field: "version")
        }
        let measurement = try FileReference.parse(o["measurement"]!, field: "measurement", file: file)

        guard let op = o["operator"]!.objectValue else {
            throw JobError.manifest("\(file): `operator` must be an object, not \(o["operator"]!.typeName)", field: "operator")
        }
        guard let type = op["type"]?.stringValue else {
            throw JobError.manifest("\(file): `operator.type` must be a string", field: "operator.type")
        }
        guard operatorTypes.contains(type) else {
            throw JobError(
                code: JobError.operatorUnknown,
                message: "\(file): unknown operator type `\(type)` (known: \(operatorTypes.sorted().joined(separator: ", ")))",
                field: "operator.type")
        }
        // The operator's own keys are checked here too, so a manifest is accepted or refused as a whole before
        // its job is queued (`dmilo submit` and the daemon use this one parser; the schema's `oneOf` says the same).
        let spec: OperatorSpec
        do { spec = try OperatorSpec(json: .object(op)) } catch let e as OperatorError {
            throw JobError(code: e.code, message: "\(file): \(e.message)", field: e.field)
        }
        // File names inside the operator obey the same rules as `measurement`.
        for key in operatorFileKeys where !(key == "kernel" && type == OperatorKind.superResolution.rawValue) {
            if let v = op[key], case .string = v {
                _ = try FileReference.parse(v, field: "operator.\(key)", file: file)
            }
        }

        var noiseSigma = 0.0
        if let v = o["noise_sigma"] {
            guard let d = v.doubleValue, d >= 0 else {
                throw JobError.manifest("\(file): `noise_sigma` must be a non-negative number", field: "noise_sigma")
            }
            noiseSigma = d
        }
        let solver = try o["solver"].map { try SolverSettings.parse($0, file: file) }
        let truth = try o["truth"].map { try FileReference.parse($0, field: "truth", file: file) }
        var seed: UInt64 = 0
        if let v = o["seed"] {
            // Exact up to 2⁶⁴ − 1 when written as an integer (like the operator seeds), else integral reals to 2⁵³.
            if case .number(let n) = v, let u = n.uint64 {
                seed = u
            } else if let i = v.intValue, i >= 0 {
                seed = UInt64(i)
            } else {
                throw JobError.manifest("\(file): `seed` must be an integer in 0...18446744073709551615", field: "seed")
            }
        }
        var imageShape: [Int]?
        if let v = o["image_shape"] {
            guard case .array(let a) = v, a.count == 3, a.allSatisfy({ ($0.intValue ?? 0) >= 1 }) else {
                throw JobError.manifest("\(file): `image_shape` must be [C, H, W] with positive integers", field: "image_shape")
            }
            imageShape = a.compactMap(\.intValue)
        }
        var model: String?
        if let v = o["model"] {
            // The daemon's model names follow one rule; anything else can name no model.
            guard let s = v.stringValue, ModelRegistry.isValidName(s) else {
                throw JobError.manifest("\(file): `model` must be a model name [A-Za-z0-9._-]{1,64}", field: "model")
            }
            model = s
        }
        var color: ColorConversion?
        if let v = o["color"] {
            guard let name = v.stringValue, let c = ColorConversion(rawValue: name) else {
                throw JobError.manifest("\(file): `color` must be \"luma\" or \"replicate\"", field: "color")
            }
            guard spec.kind != .compressedSensing else {
                throw JobError.manifest(
                    "\(file): `color` converts image measurements; compressed_sensing measures "
                        + "a vector", field: "color")
            }
            color = c
        }
        return Manifest(
            version: version, measurement: measurement, operatorType: type, operatorObject: op,
            noiseSigma: noiseSigma, solver: solver, truth: truth, seed: seed, imageShape: imageShape,
            model: model, color: color, source: data)
    }

    /// Job files an unparsable manifest seems to name (string values of `measurement`, `truth`, `operator.mask|kernel|matrix`
    /// that are valid plain names), so a rejected job's inputs still travel with it to `failed/`.
    public static func bestEffortJobFiles(_ data: Data) -> [String] {
        guard let o = JSONValue.parseLeniently(data)?.objectValue else { return [] }
        var values = [o["measurement"], o["truth"]]
        if let op = o["operator"]?.objectValue { values += operatorFileKeys.map { op[$0] } }
        return values.compactMap { v -> String? in
            guard let v, case .job(let n)? = try? FileReference.parse(v, field: "", file: "") else { return nil }
            return n
        }
    }

    /// Every file the job needs: measurement, truth and the operator's file keys (`mask`, `kernel`, `matrix`).
    /// `kernel: "bicubic"|"box"` for super-resolution is a kernel *name*, not a file.
    public var fileReferences: [(field: String, ref: FileReference)] {
        var refs: [(String, FileReference)] = [("measurement", measurement)]
        for key in Manifest.operatorFileKeys {
            guard let s = operatorObject[key]?.stringValue else { continue }
            if key == "kernel" && operatorType == OperatorKind.superResolution.rawValue { continue }
            if let r = try? FileReference.parse(.string(s), field: "operator.\(key)", file: "") { refs.append(("operator.\(key)", r)) }
        }
        if let t = truth { refs.append(("truth", t)) }
        return refs
    }
}
