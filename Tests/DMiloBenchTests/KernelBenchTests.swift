@testable import DMiloBench
import DMiloKernels
import XCTest

/// KernelBench runs end to end on a tiny layer (no timing assertions: speed targets live in `dmilo bench`).
final class KernelBenchSmokeTests: XCTestCase {
    func testConvAndSgemmReportFiniteRates() {
        let r = KernelBench.conv(Conv2DShape(batch: 1, cin: 2, h: 6, w: 6, cout: 3, kernel: 3, stride: 1, padding: 1),
                                 iterations: 1)
        for t in [r.forward, r.backwardInput, r.gemm, KernelBench.sgemm(m: 4, n: 5, k: 6, iterations: 1)] {
            XCTAssertTrue(t.milliseconds >= 0 && t.milliseconds.isFinite)
            XCTAssertTrue(t.gflops > 0, "\(t)")
        }
    }
}
