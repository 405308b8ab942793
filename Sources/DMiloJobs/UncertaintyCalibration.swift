import DMiloFormats
import Foundation

/// The σ scale `dmilo bench uncertainty --write-calibration` fits for DAPS (docs/algorithms.md §11,
/// "Calibration"): `uncertainty-calibration.json` in the model's folder (beside a single-file model), with
/// `sigma_scale` c > 0. Jobs with method `daps` report c·σ as their uncertainty; without the file c = 1 (raw σ).
public enum UncertaintyCalibration {
    public static let fileName = "uncertainty-calibration.json"

    /// The file for a model path: inside a model folder, else beside the model file.
    public static func path(forModel model: String) -> String {
        var isDir: ObjCBool = false
        let dir =
            FileManager.default.fileExists(atPath: model, isDirectory: &isDir) && isDir.boolValue
            ? model : (model as NSString).deletingLastPathComponent
        return (dir as NSString).appendingPathComponent(fileName)
    }

    /// c from the model's calibration file; nil when there is none. A file that exists but is unreadable or holds no
    /// finite positive `sigma_scale` is an error naming it (a silently ignored calibration would mislabel σ).
    public static func scale(forModel model: String) throws -> Double? {
        let file = path(forModel: model)
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        guard let data = FileManager.default.contents(atPath: file),
            let doc = try? JSONValue.parse(data).objectValue,
            let c = doc["sigma_scale"]?.doubleValue, c.isFinite, c > 0
        else {
            throw JobError(
                code: "file.invalid", message: "\(file): `sigma_scale` must be a finite number > 0 (the model's σ calibration)",
                field: "sigma_scale")
        }
        return c
    }
}
