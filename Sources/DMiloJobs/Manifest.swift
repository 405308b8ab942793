import Foundation

/// Solver settings a manifest may give (INTERFACE.md "Manifest, version 1", `solver`).
/// Unset fields take the daemon's per-operator defaults; `budget` is capped by the daemon's `max_budget`.
public struct SolverSettings: Sendable, Equatable {
    public var method: String?
    public var steps: Int?
    public var outer: Int?
    public var inner: Int?
    public var lr: Double?
    public var lrZ: Double?
    public var lrNu: Double?
    public var lrX: Double?
    public var lambda: Double?
    public var eta: Double?
    public var budget: Int?
    /// τ of the discrepancy principle: stop after the outer iteration whose residual ‖y − A(x)‖ ≤ τ·σ·√m
    /// (σ = `noise_sigma`, m = measurement size). Absent = run the iteration count / budget out.
    public var discrepancyTau: Double?
    /// `paper`: start from the official per-task hyperparameters (algorithms.md §5) instead of dmilo's defaults.
    public var preset: String?
    /// `f32` | `bf16` | `int8` | `auto`: precision of the UNet convolutions for this job (absent: the runner's).
    public var compute: String?

    public init() {}

    /// Values `preset` may take.
    public static let presets: Set<String> = ["paper"]

    /// Methods the solvers layer implements.
    public static let methods: Set<String> = ["dmilo-pgd", "dmilo", "dmplug", "dps", "baseline"]
    /// Every key `solver` may hold; anything else is `manifest.invalid` (typos are caught).
    public static let keys: Set<String> = ["method", "steps", "outer", "inner", "lr", "lr_z", "lr_nu", "lr_x",
                                           "lambda", "eta", "budget", "discrepancy_tau", "preset", "compute"]
    static let integerKeys: Set<String> = ["steps", "outer", "inner", "budget"]

    /// Fields of `other` that are set override fields of `self` (manifest over config defaults).
    public func overridden(by other: SolverSettings) -> SolverSettings {
        var s = self
        s.method = other.method ?? s.method
        s.steps = other.steps ?? s.steps
        s.outer = other.outer ?? s.outer
        s.inner = other.inner ?? s.inner
        s.lr = other.lr ?? s.lr
        s.lrZ = other.lrZ ?? s.lrZ
        s.lrNu = other.lrNu ?? s.lrNu
        s.lrX = other.lrX ?? s.lrX
        s.lambda = other.lambda ?? s.lambda
        s.eta = other.eta ?? s.eta
        s.budget = other.budget ?? s.budget
        s.discrepancyTau = other.discrepancyTau ?? s.discrepancyTau
        s.preset = other.preset ?? s.preset
        s.compute = other.compute ?? s.compute
        return s
    }

    /// Strict parse of a `solver` object; `path` prefixes field names in errors (`solver`).
    public static func parse(_ value: JSONValue, path: String = "solver", file: String) throws -> SolverSettings {
        guard let o = value.objectValue else {
            throw JobError.manifest("\(file): `\(path)` must be an object, not \(value.typeName)", field: path)
        }
        for key in o.keys.sorted() where !keys.contains(key) {
            throw JobError.manifest("\(file): unknown key `\(path).\(key)` (allowed: \(keys.sorted().joined(separator: ", ")))",
                                    field: "\(path).\(key)")
        }
        var s = SolverSettings()
        if let m = o["method"] {
            guard let name = m.stringValue, methods.contains(name) else {
                throw JobError.manifest("\(file): `\(path).method` must be one of \(methods.sorted().joined(separator: ", "))",
                                        field: "\(path).method")
            }
            s.method = name
        }
        func int(_ k: String) throws -> Int? {
            guard let v = o[k] else { return nil }
            guard let i = v.intValue, i >= 1 else {
                throw JobError.manifest("\(file): `\(path).\(k)` must be a positive integer", field: "\(path).\(k)")
            }
            return i
        }
        func real(_ k: String) throws -> Double? {
            guard let v = o[k] else { return nil }
            guard let d = v.doubleValue, d >= 0 else {
                throw JobError.manifest("\(file): `\(path).\(k)` must be a non-negative number", field: "\(path).\(k)")
            }
            return d
        }
        s.steps = try int("steps"); s.outer = try int("outer"); s.inner = try int("inner"); s.budget = try int("budget")
        s.lr = try real("lr"); s.lrZ = try real("lr_z"); s.lrNu = try real("lr_nu"); s.lrX = try real("lr_x")
        s.lambda = try real("lambda"); s.eta = try real("eta")
        s.discrepancyTau = try real("discrepancy_tau")
        if let v = o["compute"] {
            guard let name = v.stringValue, ["f32", "bf16", "int8", "auto"].contains(name) else {
                throw JobError.manifest("\(file): `\(path).compute` must be one of auto, bf16, f32, int8", field: "\(path).compute")
            }
            s.compute = name
        }
        if let v = o["preset"] {
            guard let name = v.stringValue, presets.contains(name) else {
                throw JobError.manifest("\(file): `\(path).preset` must be one of \(presets.sorted().joined(separator: ", "))",
                                        field: "\(path).preset")
            }
            s.preset = name
        }
        if s.discrepancyTau == 0 {
            throw JobError.manifest("\(file): `\(path).discrepancy_tau` must be positive", field: "\(path).discrepancy_tau")
        }
        return s
    }
}

/// A job manifest, version 1 (INTERFACE.md). Parsing is strict: unknown keys at the top level and in `solver`
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
    /// The manifest's bytes as read (for `operatorJSONObject` and for echoing).
    public var source = Data()

    /// The `operator` object exactly as `JSONSerialization` gives it (`[String: Any]` with `NSNumber`s whose
    /// `objCType` tells booleans, integers and reals apart): the input the operators layer
    /// (`OperatorFactory.make(spec:imageShape:loadArray:)`) expects.
    public var operatorJSONObject: Any {
        if let root = try? JSONSerialization.jsonObject(with: source) as? [String: Any], let op = root["operator"] {
            return op
        }
        return operatorObject.mapValues(\.foundationValue)
    }

    /// Every top-level key a version-1 manifest may hold.
    public static let keys: Set<String> = ["version", "measurement", "operator", "noise_sigma", "solver", "truth",
                                           "seed", "image_shape"]
    public static let requiredKeys: Set<String> = ["version", "measurement", "operator"]
    /// Operator types of INTERFACE.md; other values are `operator.unknown`.
    public static let operatorTypes: Set<String> = ["denoise", "super_resolution", "inpainting", "blur", "gaussian_blur",
                                                    "motion_blur", "compressed_sensing", "hdr"]
    /// Keys of `operator` whose string values name files (resolved like `measurement`).
    public static let operatorFileKeys: [String] = ["mask", "kernel", "matrix"]

    /// Parses manifest bytes. `file` is the manifest's name, used in error messages.
    public static func parse(_ data: Data, file: String) throws -> Manifest {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch {
            throw JobError.manifest("\(file) is not valid JSON")
        }
        guard let o = root.objectValue else {
            throw JobError.manifest("\(file): the manifest must be a JSON object, not \(root.typeName)")
        }
        for key in o.keys.sorted() where !keys.contains(key) {
            throw JobError.manifest("\(file): unknown key `\(key)` (allowed: \(keys.sorted().joined(separator: ", ")))",
                                    field: key)
        }
        for key in requiredKeys.sorted() where o[key] == nil {
            throw JobError.manifest("\(file): required key `\(key)` is missing", field: key)
        }
        guard let version = o["version"]?.intValue else {
            throw JobError.manifest("\(file): `version` must be the integer 1", field: "version")
        }
        guard version == 1 else {
            throw JobError.manifest("\(file): unsupported manifest version \(version) (this daemon reads version 1)",
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
            throw JobError(code: JobError.operatorUnknown,
                           message: "\(file): unknown operator type `\(type)` (known: \(operatorTypes.sorted().joined(separator: ", ")))",
                           field: "operator.type")
        }
        // File names inside the operator obey the same rules as `measurement`.
        for key in operatorFileKeys where !(key == "kernel" && type == "super_resolution") {
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
            guard let i = v.intValue, i >= 0 else {
                throw JobError.manifest("\(file): `seed` must be a non-negative integer", field: "seed")
            }
            seed = UInt64(i)
        }
        var imageShape: [Int]?
        if let v = o["image_shape"] {
            guard case .array(let a) = v, a.count == 3, a.allSatisfy({ ($0.intValue ?? 0) >= 1 }) else {
                throw JobError.manifest("\(file): `image_shape` must be [C, H, W] with positive integers", field: "image_shape")
            }
            imageShape = a.compactMap(\.intValue)
        }
        return Manifest(version: version, measurement: measurement, operatorType: type, operatorObject: op,
                        noiseSigma: noiseSigma, solver: solver, truth: truth, seed: seed, imageShape: imageShape,
                        source: data)
    }

    /// Job files an unparsable manifest seems to name (string values of `measurement`, `truth`, `operator.mask|kernel|matrix`
    /// that are valid plain names), so a rejected job's inputs still travel with it to `failed/`.
    public static func bestEffortJobFiles(_ data: Data) -> [String] {
        guard let o = (try? JSONValue.parse(data))?.objectValue else { return [] }
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
            if key == "kernel" && operatorType == "super_resolution" { continue }
            if let r = try? FileReference.parse(.string(s), field: "operator.\(key)", file: "") { refs.append(("operator.\(key)", r)) }
        }
        if let t = truth { refs.append(("truth", t)) }
        return refs
    }
}
