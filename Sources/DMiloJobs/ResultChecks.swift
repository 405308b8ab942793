import DMiloKernels
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Checks on a job's results before they are written, and the classification of write failures.
public enum ResultChecks {
    /// Internal code for "the disk is full": never published. The daemon leaves such a job queued and backs off.
    public static let diskFull = "disk.full"

    /// Throws `result.nonfinite` when the reconstruction or a number in `metrics` is NaN or infinite: such a result
    /// is not an image, and the old path failed later with a misleading `output.unwritable`.
    public static func requireFinite(_ x: Tensor, metrics: [String: Any]) throws {
        var bad = 0
        var first: Int?
        for i in 0..<x.count where !x[i].isFinite {
            bad += 1
            if first == nil { first = i }
        }
        if let first {
            throw JobError(
                code: "result.nonfinite",
                message:
                    "the reconstruction has \(bad) NaN/infinite value(s) of \(x.count) (first at element \(first)); the measurement, `noise_sigma` or the model's weights are out of range for float32")
        }
        for (k, v) in metrics.sorted(by: { $0.key < $1.key }) {
            if let d = v as? Double, !d.isFinite {
                throw JobError(
                    code: "result.nonfinite",
                    message: "metrics.json `\(k)` is \(d); the measurement or `noise_sigma` is out of range for float32", field: nil)
            }
        }
    }

    /// True when a write error's text is the C library's "No space left on device" or "Disk quota exceeded".
    public static func isDiskFull(_ message: String) -> Bool {
        message.contains(String(cString: strerror(ENOSPC))) || message.contains(String(cString: strerror(EDQUOT)))
    }

    /// A write failure as a coded error: `disk.full` (internal, the job stays queued) or `output.unwritable`.
    public static func writeFailure(_ message: String) -> JobError {
        JobError(code: isDiskFull(message) ? diskFull : "output.unwritable", message: message)
    }
}
