import DMiloFormats
import DMiloKernels
import DMiloModel
import Foundation

/// One converted tensor, for the per-tensor table.
public struct TensorReport: Sendable {
    public var name: String
    public var shape: [Int]
    public var type: GGMLType
    public var bytes: Int
    /// ‖dequantised − float‖ / ‖float‖ (0 for F32).
    public var relativeRMSError: Double
}

public struct QuantizationReport: Sendable {
    public var tensors: [TensorReport]
    public var sourceBytes: Int
    public var outputBytes: Int
    /// Output SNR (dB) of the converted UNet vs the float one on the calibration inputs, per timestep and overall.
    public var snrByTimestep: [(Int, Double)]
    public var snr: Double
    public var outputRelativeRMSError: Double
}

public struct QuantizationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ m: String) { description = m }
}

/// Float diffusers folder → dmilo GGUF (F32/F16/Q8_0), with a per-tensor error table and an end-to-end check.
public enum Quantizer {
    public static let toolVersion = "dmilo-quantize 0.1"
    /// Timesteps of the end-to-end check (the solvers use the whole range).
    public static let calibrationTimesteps = [50, 250, 500, 750, 950]

    /// Converts `input` and writes `output` atomically (temp file in the same folder, fsync, rename). Refuses,
    /// writing nothing, when the end-to-end SNR is below `snrThreshold` and `force` is false.
    public static func convert(
        input: String, policy: QuantizationPolicy, output: String, snrThreshold: Double,
        force: Bool
    ) throws -> QuantizationReport {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir), isDir.boolValue else {
            throw QuantizationError("\(input): not a diffusers model folder")
        }
        let model = try ModelFile(path: input)
        let (configData, weightsPath, kind, source) = (model.configJSON, model.weightsPath, model.architecture, model.weights)
        let reference = try model.instantiate()  // strict: names, shapes, config values
        let sha = try model.sha256()
        let schedule = model.schedule  // ADM: the converter's; diffusers: the DDPM default

        var writer = GGUFWriter()
        let anyQuantised = policy.requested == .q8_0
        writer.add("general.architecture", .string(kind == .adm ? DiffusionModels.admArchitecture : GGUFKeys.architectureValue))
        writer.add("general.name", .string(URL(fileURLWithPath: input).lastPathComponent))
        if anyQuantised { writer.add("general.quantization_version", .uint32(2)) }
        writer.add("general.file_type", .uint32(policy.requested == .f32 ? 0 : (policy.requested == .f16 ? 1 : 7)))
        writer.add(GGUFKeys.configJSON, .string(String(decoding: configData, as: UTF8.self)))
        writer.add(GGUFKeys.trainSteps, .uint32(UInt32(schedule.trainSteps)))
        writer.add(GGUFKeys.betaStart, .float32(Float(schedule.betaStart)))
        writer.add(GGUFKeys.betaEnd, .float32(Float(schedule.betaEnd)))
        writer.add(GGUFKeys.betaSchedule, .string(schedule.betaSchedule))
        writer.add(GGUFKeys.predictionType, .string("epsilon"))
        let s = reference.sampleShape
        writer.add(GGUFKeys.imageShape, .array([.uint32(UInt32(s.channels)), .uint32(UInt32(s.height)), .uint32(UInt32(s.width))]))
        writer.add(GGUFKeys.sourceSHA256, .string(sha))
        writer.add(GGUFKeys.toolVersion, .string(toolVersion))

        var reports: [TensorReport] = []
        for name in source.weightNames.sorted() {
            guard let info = source.weightInfo(name) else { continue }
            var values = [Float](repeating: 0, count: info.count)
            try values.withUnsafeMutableBufferPointer { try source.loadF32(name, into: $0) }
            let type = policy.type(for: name, shape: info.shape)
            // Q8_0 blocks run along GGUF's innermost dimension: a conv weight [O, I, kh, kw] is stored as the
            // matrix [O, I·kh·kw] (as stable-diffusion.cpp does), its PyTorch shape kept in `dmilo.shape.NAME`.
            var stored = info.shape
            if type == .q8_0, info.shape.count > 2 {
                stored = [info.shape[0], info.shape.dropFirst().reduce(1, *)]
                writer.add(GGUFKeys.shapePrefix + name, .array(info.shape.map { .uint32(UInt32($0)) }))
            }
            writer.addTensor(name, shape: stored, values: values, type: type)
            reports.append(
                TensorReport(
                    name: name, shape: info.shape, type: type, bytes: type.byteCount(elements: info.count),
                    relativeRMSError: relativeError(values, type: type)))
        }

        // Write to a temp file beside the output, check end to end, then rename (or remove and refuse).
        let out = URL(fileURLWithPath: output)
        let temp = out.deletingLastPathComponent().appendingPathComponent(".\(out.lastPathComponent).tmp-\(getpid())")
        let bytes = writer.encoded()
        try bytes.withUnsafeBytes { try SyncedFile.write($0, to: temp.path) }
        do {
            let quantised = try ModelFile(path: temp.path).instantiate()
            let (byT, total, rel) = try endToEnd(reference: reference, candidate: quantised)
            let sourceBytes = (try FileManager.default.attributesOfItem(atPath: weightsPath)[.size] as? Int) ?? 0
            let report = QuantizationReport(
                tensors: reports, sourceBytes: sourceBytes, outputBytes: bytes.count,
                snrByTimestep: byT, snr: total, outputRelativeRMSError: rel)
            if total < snrThreshold && !force {
                throw QuantizationError(String(format: "end-to-end SNR %.1f dB is below the threshold %.1f dB; nothing written (use --force to write anyway)", total, snrThreshold))
            }
            guard rename(temp.path, out.path) == 0 else {
                throw QuantizationError("cannot rename \(temp.path) to \(out.path): \(String(cString: strerror(errno)))")
            }
            return report
        } catch {
            unlink(temp.path)
            throw error
        }
    }

    /// Relative RMS error of storing `values` as `type` and reading them back.
    static func relativeError(_ values: [Float], type: GGMLType) -> Double {
        guard type != .f32 else { return 0 }
        var back = [Float](repeating: 0, count: values.count)
        switch type {
        case .f16: for i in values.indices { back[i] = HalfPrecision.f16ToF32(HalfPrecision.f32ToF16(values[i])) }
        case .q8_0:
            var raw = [UInt8](repeating: 0, count: GGMLType.q8_0.byteCount(elements: values.count))
            values.withUnsafeBufferPointer { src in raw.withUnsafeMutableBytes { Q8_0.quantize(src, into: $0) } }
            raw.withUnsafeBytes { r in back.withUnsafeMutableBufferPointer { Q8_0.dequantize(r.baseAddress!, count: values.count, into: $0.baseAddress!) } }
        case .f32: break
        }
        var num = 0.0, den = 0.0
        for i in values.indices { let d = Double(back[i] - values[i]); num += d * d; den += Double(values[i]) * Double(values[i]) }
        return den > 0 ? (num / den).squareRoot() : 0
    }

    /// Output SNR of `candidate` vs `reference` on seeded N(0, I) inputs (batch 4) at the calibration timesteps.
    public static func endToEnd(reference: any NoisePredictor, candidate: any NoisePredictor) throws -> ([(Int, Double)], Double, Double) {
        let s = reference.sampleShape
        var rng = SeededRandom(seed: 0, stream: "quantization-calibration")
        var byT: [(Int, Double)] = []
        var sig = 0.0, err = 0.0
        for t in calibrationTimesteps {
            let x = rng.gaussianTensor(shape: [4, s.channels, s.height, s.width])
            let a = try reference.forward(x, timestep: Float(t)), b = try candidate.forward(x, timestep: Float(t))
            var st = 0.0, et = 0.0
            for i in 0..<a.count { st += Double(a[i]) * Double(a[i]); let d = Double(a[i] - b[i]); et += d * d }
            byT.append((t, 10 * log10(st / max(et, 1e-30))))
            sig += st; err += et
        }
        return (byT, 10 * log10(sig / max(err, 1e-30)), (err / max(sig, 1e-30)).squareRoot())
    }
}
