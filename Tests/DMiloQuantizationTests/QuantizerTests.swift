import DMiloFormats
import DMiloModel
import Foundation
import XCTest

@testable import DMiloQuantization

final class QuantizerTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtureModel = repo.appendingPathComponent("Tests/DMiloModelTests/Fixtures/cifar10_layout").path
    static let admFixture = repo.appendingPathComponent("Tests/DMiloModelTests/Fixtures/adm_variants_f16").path

    /// An ADM folder from Tools/convert_adm.py: recorded as dmilo.adm with its config and schedule, runs in the
    /// engine close to the float model; ADM's time MLP / stem / head stay F32 under the default policy.
    func testADMConversion() throws {
        let p = QuantizationPolicy(requested: .q8_0)
        XCTAssertEqual(p.type(for: "time_embed.0.weight", shape: [128, 32]), .f32)
        XCTAssertEqual(p.type(for: "input_blocks.0.0.weight", shape: [32, 3, 3, 3]), .f32)
        XCTAssertEqual(p.type(for: "out.2.weight", shape: [3, 32, 3, 3]), .f32)
        XCTAssertEqual(p.type(for: "middle_block.1.proj_out.weight", shape: [64, 64, 1]), .q8_0)
        let path = out("adm.gguf")
        let r = try Quantizer.convert(input: Self.admFixture, policy: p, output: path, snrThreshold: 30, force: false)
        XCTAssertGreaterThan(r.snr, 30)
        let f = try GGUFFile(path: path)
        XCTAssertEqual(f.metadata[GGUFKeys.architecture]?.stringValue, DiffusionModels.admArchitecture)
        XCTAssertNotNil(f.metadata[GGUFKeys.configJSON]?.stringValue?.range(of: "\"ADMUNet\""))
        XCTAssertTrue(try DiffusionModels.load(path: path) is ADMUNet)
    }

    func testPolicyKeepsSensitiveTensorsAndNeedsBlocksOf32() {
        let p = QuantizationPolicy(requested: .q8_0)
        XCTAssertEqual(p.type(for: "conv_in.weight", shape: [32, 3, 3, 3]), .f32)
        XCTAssertEqual(p.type(for: "conv_out.weight", shape: [3, 32, 3, 3]), .f32)
        XCTAssertEqual(p.type(for: "down_blocks.0.resnets.0.conv1.bias", shape: [64]), .f32)
        XCTAssertEqual(p.type(for: "down_blocks.0.resnets.0.norm1.weight", shape: [64]), .f32)
        XCTAssertEqual(p.type(for: "time_embedding.linear_1.weight", shape: [256, 64]), .f32)
        XCTAssertEqual(p.type(for: "down_blocks.1.resnets.0.conv1.weight", shape: [96, 96, 3, 3]), .q8_0)  // 864 = 27·32
        XCTAssertEqual(p.type(for: "down_blocks.0.resnets.0.conv1.weight", shape: [48, 48, 3, 3]), .f16)  // 432: not a multiple
        XCTAssertEqual(QuantizationPolicy(requested: .q8_0, keep: ["conv1"]).type(for: "x.conv1.weight", shape: [96, 96, 3, 3]), .f32)
        XCTAssertEqual(QuantizationPolicy(requested: .f16, all: true).type(for: "conv_in.weight", shape: [32, 3, 3, 3]), .f16)
    }

    func out(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "dmilo-quant-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir + "/" + name
    }

    /// Q8_0 conversion of a diffusers fixture: the engine runs the GGUF directly, close to the float model.
    func testQ8_0ConversionRunsInTheEngineCloseToFloat() throws {
        let path = out("m.gguf")
        let r = try Quantizer.convert(
            input: Self.fixtureModel, policy: QuantizationPolicy(requested: .q8_0), output: path,
            snrThreshold: 30, force: false)
        XCTAssertTrue(r.tensors.contains { $0.type == .q8_0 })
        XCTAssertGreaterThan(r.snr, 30)
        XCTAssertLessThan(r.outputBytes, r.sourceBytes)
        for t in r.tensors where t.type == .q8_0 { XCTAssertLessThan(t.relativeRMSError, 0.01, t.name) }
        let m = try UNet2DModel.load(path: path)  // loads by extension, config from metadata
        let ref = try UNet2DModel.load(path: Self.fixtureModel)
        let (_, snr, rel) = try Quantizer.endToEnd(reference: ref, candidate: m)
        XCTAssertEqual(snr, r.snr, accuracy: 1e-6)
        XCTAssertLessThan(rel, 1e-2)
        let f = try GGUFFile(path: path)
        XCTAssertEqual(f.metadata["general.quantization_version"]?.intValue, 2)
        XCTAssertEqual(
            f.metadata[GGUFKeys.sourceSHA256]?.stringValue,
            try SHA256.hex(ofFile: Self.fixtureModel + "/diffusion_pytorch_model.safetensors"))
    }

    func testRefusesBelowThresholdWithoutWritingAnything() throws {
        let path = out("refused.gguf")
        XCTAssertThrowsError(
            try Quantizer.convert(
                input: Self.fixtureModel, policy: QuantizationPolicy(requested: .q8_0),
                output: path, snrThreshold: 500, force: false)
        ) { e in
            XCTAssertTrue("\(e)".contains("below the threshold"), "\(e)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "no output and no temp file left")
        XCTAssertNoThrow(
            try Quantizer.convert(
                input: Self.fixtureModel, policy: QuantizationPolicy(requested: .q8_0),
                output: path, snrThreshold: 500, force: true))
    }

    func testBadInputIsAClearError() {
        XCTAssertThrowsError(
            try Quantizer.convert(
                input: "/nonexistent", policy: QuantizationPolicy(requested: .f16),
                output: out("x.gguf"), snrThreshold: 30, force: false)
        ) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent"))
        }
    }

    /// PyPI `gguf` (llama.cpp's reader) reads our file and every tensor matches the source (Tools/check_gguf.py).
    func testPyPIGGUFReadsOurFile() throws {
        let env = ProcessInfo.processInfo.environment
        let candidates = [env["DMILO_PYTHON"], Self.repo.appendingPathComponent(".venv-tools/bin/python").path, "/usr/bin/python3"].compactMap { $0 }
        guard
            let python = candidates.first(where: { p in
                FileManager.default.isExecutableFile(atPath: p) && run(p, ["-c", "import gguf, safetensors, numpy"]).0 == 0
            })
        else {
            throw XCTSkip("no Python with gguf + safetensors + numpy (set DMILO_PYTHON, or pip install -r Tools/requirements.txt)")
        }
        let path = out("check.gguf")
        _ = try Quantizer.convert(
            input: Self.fixtureModel, policy: QuantizationPolicy(requested: .q8_0), output: path,
            snrThreshold: 30, force: false)
        let (rc, text) = run(python, [Self.repo.appendingPathComponent("Tools/check_gguf.py").path, path, Self.fixtureModel])
        XCTAssertEqual(rc, 0, text)
        XCTAssertTrue(text.contains("OK"), text)
    }

    func run(_ exe: String, _ args: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
