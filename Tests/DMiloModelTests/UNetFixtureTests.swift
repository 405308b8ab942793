import DMiloFormats
import DMiloKernels
import XCTest

@testable import DMiloModel

/// Our UNet2DModel against diffusers (float64 autograd reference from Tools/make_fixtures.py).
final class UNetFixtureTests: XCTestCase {
    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try UNet2DModel.load(path: Fixtures.folder(name))
        let x = try Fixtures.array(name, "x.npy")
        let t = try Fixtures.array(name, "timestep.npy")[0]
        let want = try Fixtures.array(name, "output.npy")
        let cot = try Fixtures.array(name, "cotangent.npy")
        let wantGrad = try Fixtures.array(name, "input_grad.npy")

        let y = try model.forward(x, timestep: t)
        XCTAssertEqual(y.shape, want.shape, file: file, line: line)
        let e = Fixtures.relativeMaxError(y, want)
        XCTAssertLessThanOrEqual(e, 1e-4, "\(name): output rel. error \(e)", file: file, line: line)

        // Twice, so the second pass runs on the re-sized arenas (steady state) and must give identical results.
        for pass in 0..<2 {
            let (y2, tape) = try model.forwardForVJP(x, timestep: t)
            XCTAssertEqual(y2.array, y.array, "\(name): recording forward differs from plain forward", file: file, line: line)
            let g = try model.vjp(tape, cotangent: cot)
            XCTAssertEqual(g.shape, x.shape, file: file, line: line)
            let eg = Fixtures.relativeMaxError(g, wantGrad)
            XCTAssertLessThanOrEqual(eg, 1e-3, "\(name) pass \(pass): input-grad rel. error \(eg)", file: file, line: line)
            if pass == 1 { print("fixture \(name): output rel. error \(e), input-grad rel. error \(eg)") }
        }
    }

    func testCifar10Layout() throws { try check("cifar10_layout") }
    func testBundledF16() throws { try check("bundled_f16") }
    func testScaleShiftBF16() throws { try check("scale_shift_bf16") }
    func testLegacyAttentionNames() throws { try check("legacy_attention") }
    func testFourierCenteredMidScale() throws { try check("fourier_misc") }

    /// Batch elements are independent: running sample 1 alone gives the batch-of-2 result for it.
    func testBatchConsistency() throws {
        let name = "cifar10_layout"
        let model = try UNet2DModel.load(path: Fixtures.folder(name))
        let x = try Fixtures.array(name, "x.npy")
        let t = try Fixtures.array(name, "timestep.npy")[0]
        let yb = try model.forward(x, timestep: t)
        let per = x.count / 2
        let x1 = Tensor(shape: [1] + Array(x.shape.dropFirst()), values: Array(x.array[per...]))
        let y1 = try model.forward(x1, timestep: t)
        let perOut = yb.count / 2
        for i in 0..<perOut { XCTAssertEqual(y1[i], yb[perOut + i], accuracy: 1e-5) }
    }

    /// Compressed residency (F16/BF16 conv weights dequantised per layer) gives bit-identical results and holds less.
    func testCompressedResidencyMatchesFloat32() throws {
        for name in ["bundled_f16", "scale_shift_bf16"] {
            let a = try UNet2DModel.load(path: Fixtures.folder(name))
            let b = try UNet2DModel.load(path: Fixtures.folder(name), residency: .compressedConvolutions)
            XCTAssertLessThan(b.parameterBytes, a.parameterBytes / 2, name)
            let x = try Fixtures.array(name, "x.npy"), cot = try Fixtures.array(name, "cotangent.npy")
            let t = try Fixtures.array(name, "timestep.npy")[0]
            XCTAssertEqual(try a.forward(x, timestep: t).array, try b.forward(x, timestep: t).array, name)
            let (_, ta) = try a.forwardForVJP(x, timestep: t), (_, tb) = try b.forwardForVJP(x, timestep: t)
            XCTAssertEqual(try a.vjp(ta, cotangent: cot).array, try b.vjp(tb, cotangent: cot).array, name)
        }
        // F32 checkpoints have nothing to keep compressed.
        let f = try UNet2DModel.load(path: Fixtures.folder("legacy_attention"), residency: .compressedConvolutions)
        XCTAssertEqual(f.parameterBytes, 4 * f.parameterCount)
    }

    /// The memory estimate covers what the arenas actually reserve after a forward+VJP.
    func testMemoryEstimateCoversWorkspace() throws {
        for name in ["cifar10_layout", "bundled_f16"] {
            let model = try UNet2DModel.load(path: Fixtures.folder(name))
            let x = try Fixtures.array(name, "x.npy"), cot = try Fixtures.array(name, "cotangent.npy")
            for _ in 0..<2 {
                let (_, tape) = try model.forwardForVJP(x, timestep: 10)
                _ = try model.vjp(tape, cotangent: cot)
            }
            // steady state: further passes at this batch size reserve nothing new
            let reserved = model.workspaceBytes
            let (_, tape) = try model.forwardForVJP(x, timestep: 10)
            _ = try model.vjp(tape, cotangent: cot)
            _ = try model.forward(x, timestep: 10)
            XCTAssertEqual(model.workspaceBytes, reserved, name)
            let est = model.vjpMemoryBytes(batch: x.shape[0])
            XCTAssertGreaterThanOrEqual(est, model.workspaceBytes, name)
            XCTAssertLessThan(est, 4 * model.workspaceBytes + 64 << 20, name)
        }
    }

    /// The recompute knob gives bit-identical gradients with a smaller workspace.
    func testRecomputeActivations() throws {
        for name in ["bundled_f16", "scale_shift_bf16", "fourier_misc"] {
            let a = try UNet2DModel.load(path: Fixtures.folder(name)), b = try UNet2DModel.load(path: Fixtures.folder(name))
            b.recomputeActivations = true
            let x = try Fixtures.array(name, "x.npy"), cot = try Fixtures.array(name, "cotangent.npy")
            let t = try Fixtures.array(name, "timestep.npy")[0]
            var ga: [Float] = [], gb: [Float] = []
            for _ in 0..<2 {
                let (ya, ta) = try a.forwardForVJP(x, timestep: t)
                let (yb, tb) = try b.forwardForVJP(x, timestep: t)
                XCTAssertEqual(ya.array, yb.array, name)
                XCTAssertLessThan(tb.bytes, ta.bytes, name)
                ga = try a.vjp(ta, cotangent: cot).array
                gb = try b.vjp(tb, cotangent: cot).array
            }
            XCTAssertEqual(ga, gb, name)
            XCTAssertLessThan(b.workspaceBytes, a.workspaceBytes, name)
            XCTAssertGreaterThanOrEqual(b.vjpMemoryBytes(batch: x.shape[0]), b.workspaceBytes, name)
        }
    }

    /// A stale tape (another forward ran) or a reused tape is refused, not silently read.
    func testStaleTapeIsRefused() throws {
        let name = "fourier_misc"
        let model = try UNet2DModel.load(path: Fixtures.folder(name))
        let x = try Fixtures.array(name, "x.npy")
        let cot = try Fixtures.array(name, "cotangent.npy")
        let (_, tape) = try model.forwardForVJP(x, timestep: 0.5)
        _ = try model.forward(x, timestep: 0.5)
        XCTAssertThrowsError(try model.vjp(tape, cotangent: cot))
        let (_, tape2) = try model.forwardForVJP(x, timestep: 0.5)
        _ = try model.vjp(tape2, cotangent: cot)
        XCTAssertThrowsError(try model.vjp(tape2, cotangent: cot))
    }

    func testInputShapeErrors() throws {
        let model = try UNet2DModel.load(path: Fixtures.folder("legacy_attention"))
        XCTAssertThrowsError(try model.forward(Tensor(shape: [1, 3, 16, 16]), timestep: 1)) { e in
            XCTAssertTrue("\(e)".contains("channels"), "\(e)")
        }
        XCTAssertThrowsError(try model.forward(Tensor(shape: [1, 2, 15, 16]), timestep: 1))
        XCTAssertThrowsError(try model.forward(Tensor(shape: [2, 16, 16]), timestep: 1))
    }
}
