import DMiloFormats
import DMiloImage
import DMiloKernels
import DMiloVersion
import Foundation

/// Writes a job's results (docs/INTERFACE.md "Results"): `reconstruction.png`, `reconstruction.npy`, `metrics.json`,
/// `montage.png`. The caller hands an empty private folder; the daemon fsyncs and renames it into `done/NAME/`.
public enum ResultFiles {
    /// Display scale of montage panels: 32×32 images become 128 px tall, viewable without zooming.
    public static func montageScale(height: Int) -> Int { max(1, min(8, 128 / max(height, 1))) }

    /// `montageHeader` and `montageMasks` are passed to ``Montage/make(panels:labels:scale:separator:header:masks:)``.
    public static func write(
        reconstruction x: Tensor, bitDepth: Int, montagePanels: [Tensor], labels: [String],
        metrics: [String: Any], to dir: URL, montageHeader: [String] = [],
        montageMasks: [[Float]?]? = nil
    ) throws {
        try ResultChecks.requireFinite(x, metrics: metrics)
        do {
            let png = try PNGImage(modelUnits: x, bitDepth: bitDepth)
            try writeFile(Data(try png.encoded()), dir.appendingPathComponent("reconstruction.png"))
            try writeFile(
                Data(NPY.encode(shape: x.shape, values: UnsafeBufferPointer(start: x.data, count: x.count))),
                dir.appendingPathComponent("reconstruction.npy"))
            let h = x.shape.count == 3 ? x.shape[1] : x.shape[0]
            let montage = try Montage.make(
                panels: montagePanels, labels: labels, scale: montageScale(height: h),
                header: montageHeader, masks: montageMasks)
            try writeFile(Data(try montage.encoded()), dir.appendingPathComponent("montage.png"))
            let json = try JSONSerialization.data(withJSONObject: metrics.merging(["dmilo_version": BuildVersion.description]) { a, _ in a }, options: [.prettyPrinted, .sortedKeys])
            try writeFile(json + Data("\n".utf8), dir.appendingPathComponent("metrics.json"))
        } catch let e as JobError {
            throw e
        } catch {
            throw ResultChecks.writeFailure("cannot write results into \(dir.path): \(error)")
        }
    }

    /// A posterior sampler's extra results (docs/INTERFACE.md "Results"): `uncertainty.npy` (per-pixel standard
    /// deviation σ, float32 (C,H,W), model units), `uncertainty.png` (σ as a colour map with its scale bar) and, when
    /// asked, `samples.npy` (the K chains' samples, (K,C,H,W)).
    public static func writeUncertainty(sigma: Tensor, samples: [Tensor]?, to dir: URL) throws {
        try ResultChecks.requireFinite(sigma, metrics: [:])
        do {
            try writeFile(
                Data(NPY.encode(shape: sigma.shape, values: UnsafeBufferPointer(start: sigma.data, count: sigma.count))),
                dir.appendingPathComponent("uncertainty.npy"))
            let h = sigma.shape.count == 3 ? sigma.shape[1] : 1
            let png = try UncertaintyMap.render(sigma: sigma, scale: montageScale(height: h))
            try writeFile(Data(try png.encoded()), dir.appendingPathComponent("uncertainty.png"))
            if let samples, let first = samples.first {
                var values: [Float] = []
                values.reserveCapacity(first.count * samples.count)
                for s in samples { values += UnsafeBufferPointer(start: s.data, count: s.count) }
                try values.withUnsafeBufferPointer {
                    try writeFile(
                        Data(NPY.encode(shape: [samples.count] + first.shape, values: $0)),
                        dir.appendingPathComponent("samples.npy"))
                }
            }
        } catch let e as JobError {
            throw e
        } catch {
            throw ResultChecks.writeFailure("cannot write uncertainty results into \(dir.path): \(error)")
        }
    }

    /// Writes `data` to `url`, creating or truncating it, then fsyncs (the daemon renames the folder afterwards).
    public static func writeFile(_ data: Data, _ url: URL) throws {
        do {
            try data.withUnsafeBytes { try SyncedFile.write($0, to: url.path) }
        } catch let e as FormatError {
            throw ResultChecks.writeFailure(e.description)
        }
    }
}

/// Peak resident set size of this process in MiB (VmHWM from /proc/self/status), nil where unavailable.
public func peakRSSMegabytes() -> Double? {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first
        return kb.map { $0 / 1024 }
    }
    return nil
}
