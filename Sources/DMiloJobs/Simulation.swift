import DMiloFormats
import DMiloImage
import DMiloKernels
import DMiloOperators
import Foundation

/// `dmilo simulate`: makes a measurement y = A(x) + σ·n from a clean image, plus a manifest ready to drop into a spool.
///
/// The noise n ~ N(0, I) comes from `SeededRandom(seed, "measurement-noise")`; random operator parts (masks, CS matrices,
/// motion kernels) come from their own seeds in the operator object, so the daemon rebuilds exactly the same A.
/// Files are written data first, manifest last (dot-file + rename), so a spool never sees a half-written job.
public enum Simulation {
    public struct Output {
        public var manifest: URL
        public var measurement: URL
        public var truth: URL
    }

    /// - Parameters:
    ///   - image: clean image (`.png` or `.npy` in model units, (C,H,W) or (H,W)).
    ///   - operatorSpec: the manifest `operator` object (files it names are resolved beside `manifest`).
    ///   - solver: optional manifest `solver` object to embed.
    public static func run(
        image: String, operatorSpec: [String: Any], noiseSigma: Double, seed: UInt64,
        manifest: URL, solver: [String: Any]? = nil
    ) throws -> Output {
        let dir = manifest.deletingLastPathComponent()
        let name = manifest.deletingPathExtension().lastPathComponent
        guard JobName.isValid(name), manifest.pathExtension == "json" else {
            throw JobError.manifest("\(manifest.lastPathComponent): the output must be NAME.json with NAME matching [A-Za-z0-9._-]{1,128}")
        }
        guard noiseSigma >= 0, noiseSigma.isFinite else { throw JobError.manifest("--noise-sigma must be ≥ 0", field: "noise_sigma") }
        let imageData = try SafeFile.read(image, display: image, field: "image")
        var x = try JobInputs.measurement(imageData, name: image, field: "image").y
        if x.shape.count == 2 { x = x.copy().reshape([1] + x.shape) }
        guard x.shape.count == 3 else { throw JobError(code: "measurement.shape", message: "\(image): expected an image, got shape \(x.shape)") }

        let op = try OperatorFactory.make(spec: operatorSpec, imageShape: x.shape) { file, field in
            let ref = try FileReference.parse(.string(file), field: field, file: manifest.lastPathComponent)
            let path: String
            switch ref {
            case .job(let n): path = dir.appendingPathComponent(n).path
            case .calibration(let n): path = dir.appendingPathComponent("calibration").appendingPathComponent(n).path
            }
            return try JobInputs.operatorArray(SafeFile.read(path, display: file, field: field), name: file, field: field)
        }
        let y = op.apply(x)
        var rng = SeededRandom(seed: seed, stream: "measurement-noise")
        for i in 0..<y.count { y[i] += Float(rng.gaussian() * noiseSigma) }

        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let measurement = dir.appendingPathComponent("\(name).npy")
        try ResultFiles.writeFile(
            Data(NPY.encode(shape: y.shape, values: UnsafeBufferPointer(start: y.data, count: y.count))),
            measurement)
        let truthIsPNG = image.lowercased().hasSuffix(".png")
        let truth = dir.appendingPathComponent("\(name)-truth.\(truthIsPNG ? "png" : "npy")")
        if truthIsPNG {
            try ResultFiles.writeFile(imageData, truth)
        } else {
            try ResultFiles.writeFile(Data(NPY.encode(shape: x.shape, values: UnsafeBufferPointer(start: x.data, count: x.count))), truth)
        }
        var doc: [String: Any] = [
            "version": 1, "measurement": measurement.lastPathComponent, "operator": operatorSpec,
            "noise_sigma": noiseSigma, "truth": truth.lastPathComponent, "seed": seed,
        ]
        if let solver { doc["solver"] = solver }
        let json = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        let staging = dir.appendingPathComponent(".\(name).json.tmp")
        try ResultFiles.writeFile(json + Data("\n".utf8), staging)
        guard rename(staging.path, manifest.path) == 0 else {
            throw JobError(code: "output.unwritable", message: "cannot rename \(staging.path) to \(manifest.path): \(String(cString: strerror(errno)))")
        }
        return Output(manifest: manifest, measurement: measurement, truth: truth)
    }
}
