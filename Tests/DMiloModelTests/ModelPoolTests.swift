import DMiloFormats
import DMiloKernels
import Foundation
import XCTest

@testable import DMiloModel

/// Instances from one `ModelFile` share one copy of the weights; each owns its workspace and tape, so several
/// tapes can live at once (what DMPlug and layer spans need) with the results of a single instance.
final class ModelPoolTests: XCTestCase {
    func check(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try ModelFile(path: path)
        let pool = try ModelPool(file: model)
        let a = pool.checkOut(), b = pool.checkOut(), c = pool.replica()
        for r in [b, c] {
            XCTAssertTrue(r !== a, file: file, line: line)
            XCTAssertTrue(
                ((r as? UNetRuntime<UNetConfig>)?.store ?? (r as? UNetRuntime<ADMConfig>)?.store)
                    === ((a as? UNetRuntime<UNetConfig>)?.store ?? (a as? UNetRuntime<ADMConfig>)?.store), file: file, line: line)
            XCTAssertEqual(r.parameterBytes, a.parameterBytes, file: file, line: line)
        }
        let s = a.sampleShape
        var rng = SeededRandom(seed: 5)
        let x = Tensor(shape: [1, s.channels, s.height, s.width]), x2 = Tensor(shape: x.shape)
        for i in 0..<x.count { x[i] = Float(rng.gaussian()); x2[i] = Float(rng.gaussian()) }
        let t = a.typicalTimestep
        // Two live tapes on two instances, consumed in reverse order, equal one instance run twice in turn.
        let (ya, ta) = try a.forwardForVJP(x, timestep: t)
        let (yb, tb) = try b.forwardForVJP(x2, timestep: t)
        let cot = Tensor(shape: ya.shape)
        for i in 0..<cot.count { cot[i] = Float(rng.gaussian()) }
        let gb = try b.vjp(tb, cotangent: cot), ga = try a.vjp(ta, cotangent: cot)
        let (yc, tc) = try c.forwardForVJP(x2, timestep: t)
        let gc = try c.vjp(tc, cotangent: cot)
        let (ya2, ta2) = try a.forwardForVJP(x, timestep: t)
        let ga2 = try a.vjp(ta2, cotangent: cot)
        XCTAssertEqual(ya.array, ya2.array, file: file, line: line)
        XCTAssertEqual(ga.array, ga2.array, file: file, line: line)
        XCTAssertEqual(yb.array, yc.array, file: file, line: line)
        XCTAssertEqual(gb.array, gc.array, file: file, line: line)
        XCTAssertNotEqual(ya.array, yb.array, file: file, line: line)
    }

    func testReplicasShareWeightsAndKeepTheirOwnTapes() throws {
        try check(Fixtures.folder("cifar10_layout"))
        try check(Fixtures.folder("adm_ffhq_small") + "/model.gguf")
    }
}
