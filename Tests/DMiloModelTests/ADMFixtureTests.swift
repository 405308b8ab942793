import DMiloFormats
import DMiloKernels
import Foundation
import XCTest

@testable import DMiloModel

/// Our ADMUNet against deepinv's DiffUNet (guided-diffusion's UNetModel), float64 autograd reference from
/// Tools/make_adm_fixtures.py: random weights through Tools/convert_adm.py (and dmilo-quantize for the GGUF ones).
final class ADMFixtureTests: XCTestCase {
    /// The model file of a fixture: model.gguf when present, else the converted folder.
    static func modelPath(_ name: String) -> String {
        let gguf = Fixtures.folder(name) + "/model.gguf"
        return FileManager.default.fileExists(atPath: gguf) ? gguf : Fixtures.folder(name)
    }

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let net = try DiffusionModels.load(path: Self.modelPath(name))
        XCTAssertTrue(net is ADMUNet, "\(name) did not load as ADM", file: file, line: line)
        let x = try Fixtures.array(name, "x.npy")
        let t = try Fixtures.array(name, "timestep.npy")[0]
        let want = try Fixtures.array(name, "output.npy")
        let cot = try Fixtures.array(name, "cotangent.npy")
        let wantGrad = try Fixtures.array(name, "input_grad.npy")

        let y = try net.forward(x, timestep: t)
        XCTAssertEqual(y.shape, want.shape, file: file, line: line)
        let e = Fixtures.relativeMaxError(y, want)
        XCTAssertLessThanOrEqual(e, 1e-4, "\(name): output rel. error \(e)", file: file, line: line)
        for pass in 0..<2 {  // the second pass runs on the re-sized arenas
            let (y2, tape) = try net.forwardForVJP(x, timestep: t)
            XCTAssertEqual(y2.array, y.array, "\(name): recording forward differs from plain forward", file: file, line: line)
            let g = try net.vjp(tape, cotangent: cot)
            let eg = Fixtures.relativeMaxError(g, wantGrad)
            XCTAssertLessThanOrEqual(eg, 1e-3, "\(name) pass \(pass): input-grad rel. error \(eg)", file: file, line: line)
            if pass == 1 { print("ADM fixture \(name): output rel. error \(e), input-grad rel. error \(eg)") }
        }
    }

    /// ffhq_10m's layout at width 32 (6 levels, attention at image/16, 64 ch/head, legacy qkv order), Q8_0 GGUF.
    func testADMFFHQLayoutSmall() throws { try check("adm_ffhq_small") }
    /// Full width 128 at 64×64, new qkv order, Q8_0 GGUF.
    func testADMWide128() throws { try check("adm_wide128") }
    /// Additive time conditioning, conv resampling, heads by count, 2 res blocks, no learn_sigma, batch 2, F16.
    func testADMVariantsF16() throws { try check("adm_variants_f16") }

    /// learn_sigma: a cotangent on the ε channels only is the full cotangent with zero variance channels.
    func testADMEpsilonOnlyCotangent() throws {
        let name = "adm_ffhq_small"
        let net = try DiffusionModels.load(path: Self.modelPath(name))
        XCTAssertEqual(net.outputChannels, 6)
        XCTAssertEqual(net.sampleShape.channels, 3)
        let x = try Fixtures.array(name, "x.npy"), t = try Fixtures.array(name, "timestep.npy")[0]
        let full = try Fixtures.array(name, "cotangent.npy")
        let (B, H, W) = (full.shape[0], full.shape[2], full.shape[3]), HW = H * W
        let eps = Tensor(shape: [B, 3, H, W]), padded = Tensor(shape: full.shape)
        for b in 0..<B {
            for i in 0..<(3 * HW) { eps[b * 3 * HW + i] = full[b * 6 * HW + i]; padded[b * 6 * HW + i] = full[b * 6 * HW + i] }
        }
        let (_, t1) = try net.forwardForVJP(x, timestep: t)
        let g1 = try net.vjp(t1, cotangent: eps)
        let (_, t2) = try net.forwardForVJP(x, timestep: t)
        let g2 = try net.vjp(t2, cotangent: padded)
        XCTAssertEqual(g1.array, g2.array)
        let (_, t3) = try net.forwardForVJP(x, timestep: t)
        XCTAssertThrowsError(try net.vjp(t3, cotangent: Tensor(shape: [B, 4, H, W])))
    }

    /// Recompute knob: bit-identical gradients, smaller tape; the memory estimate covers the arenas.
    func testADMRecomputeAndMemoryEstimate() throws {
        let name = "adm_variants_f16"
        let a = try DiffusionModels.load(path: Self.modelPath(name)), b = try DiffusionModels.load(path: Self.modelPath(name))
        b.recomputeActivations = true
        let x = try Fixtures.array(name, "x.npy"), cot = try Fixtures.array(name, "cotangent.npy")
        var ga: [Float] = [], gb: [Float] = []
        for _ in 0..<2 {
            let (ya, ta) = try a.forwardForVJP(x, timestep: 10), (yb, tb) = try b.forwardForVJP(x, timestep: 10)
            XCTAssertEqual(ya.array, yb.array)
            XCTAssertLessThan(tb.bytes, ta.bytes)
            ga = try a.vjp(ta, cotangent: cot).array
            gb = try b.vjp(tb, cotangent: cot).array
        }
        XCTAssertEqual(ga, gb)
        for m in [a, b] {
            XCTAssertGreaterThanOrEqual(m.vjpMemoryBytes(batch: x.shape[0]), m.workspaceBytes)
            XCTAssertLessThan(m.vjpMemoryBytes(batch: x.shape[0]), 4 * m.workspaceBytes + 64 << 20)
        }
    }

    /// The loader picks the architecture from what travels with the weights, and the schedule with it.
    func testADMLoaderDispatchAndSchedule() throws {
        XCTAssertEqual(try ModelFile(path: Self.modelPath("adm_ffhq_small")).architecture, .adm)
        XCTAssertEqual(try ModelFile(path: Self.modelPath("adm_variants_f16")).architecture, .adm)
        XCTAssertEqual(try ModelFile(path: Fixtures.folder("cifar10_layout")).architecture, .unet2d)
        XCTAssertTrue(try DiffusionModels.load(path: Fixtures.folder("cifar10_layout")) is UNet2DModel)
        for name in ["adm_ffhq_small", "adm_variants_f16"] {
            // GGUF stores β as float32 and the schedule is computed in float32: equal to ~1 ulp of float32
            let s = try ModelFile(path: Self.modelPath(name)).schedule, want = NoiseSchedule()
            XCTAssertEqual(s.trainSteps, 1000, name)
            XCTAssertEqual(s.betaSchedule, "linear", name)
            XCTAssertEqual(s.betaStart, 1e-4, accuracy: 1e-11, name)
            XCTAssertEqual(s.betaEnd, 0.02, accuracy: 1e-9, name)
            XCTAssertEqual(s.alphaBar(999), want.alphaBar(999), accuracy: 1e-9, name)
        }
        // the GGUF records the ADM config (as written by the converter) and its dtypes
        let f = try GGUFFile(path: Self.modelPath("adm_wide128"))
        XCTAssertEqual(f.metadata[GGUFKeys.architecture]?.stringValue, DiffusionModels.admArchitecture)
        let cfg = try ADMConfig.parse(Data(f.metadata[GGUFKeys.configJSON]!.stringValue!.utf8), file: "gguf")
        XCTAssertEqual(cfg.numChannels, 128)
        XCTAssertTrue(cfg.useNewAttentionOrder)
    }

    /// Strict config: unknown keys, class conditioning and inconsistent values are refused with the key named.
    func testADMConfigIsStrict() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: Fixtures.folder("adm_variants_f16") + "/config.json"))
        var d = try JSONSerialization.jsonObject(with: good) as! [String: Any]
        XCTAssertNoThrow(try ADMConfig.parse(good, file: "c"))
        func refused(_ key: String, _ value: Any, file: StaticString = #filePath, line: UInt = #line) {
            var e = d
            e[key] = value
            let data = try! JSONSerialization.data(withJSONObject: e)
            XCTAssertThrowsError(try ADMConfig.parse(data, file: "c"), file: file, line: line) { err in
                XCTAssertTrue("\(err)".contains(key), "\(err)", file: file, line: line)
            }
        }
        refused("num_chanels", 32)
        refused("class_cond", true)
        refused("num_channels", 48)  // not a multiple of GroupNorm32's groups
        refused("out_channels", 6)  // learn_sigma false → 3
        refused("attention_resolutions", [5])
        refused("beta_schedule", "cosine")
        d["_class_name"] = "UNet2DModel"
        XCTAssertThrowsError(try ADMConfig.parse(try JSONSerialization.data(withJSONObject: d), file: "c"))
    }

    /// Legacy qkv order: row h·3d + p·d + i of QKVAttentionLegacy's `qkv.reshape(B·heads, 3d, L).split(d)` is
    /// part p (q/k/v) of head h; the canonical order puts it at p·C + h·d + i.
    func testADMLegacyQKVRowMap() {
        let C = 8, heads = 2, d = 4
        var seen = Set<Int>()
        for p in 0..<3 {
            for h in 0..<heads {
                for i in 0..<d {
                    XCTAssertEqual(ADMQKV.legacyRow(forNewRow: p * C + h * d + i, channels: C, heads: heads), h * 3 * d + p * d + i)
                    seen.insert(p * C + h * d + i)
                }
            }
        }
        XCTAssertEqual(seen.count, 3 * C)
    }
}
