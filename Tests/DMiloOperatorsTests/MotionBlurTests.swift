import DMiloKernels
import XCTest

@testable import DMiloOperators

final class MotionBlurTests: XCTestCase {
    func testKernelIsDeterministicNonNegativeAndSumsToOne() throws {
        for (size, intensity) in [(3, 0.0), (9, 0.3), (31, 0.5), (64 + 1, 1.0)] {
            for seed: UInt64 in [0, 7, 123] {
                let a = try MotionKernel.generate(size: size, intensity: intensity, seed: seed)
                let b = try MotionKernel.generate(size: size, intensity: intensity, seed: seed)
                XCTAssertEqual(a.shape, [size, size])
                XCTAssertEqual(a.array, b.array, "same seed, same kernel")
                XCTAssertTrue(a.array.allSatisfy { $0 >= 0 && $0.isFinite })
                XCTAssertEqual(Double(a.array.reduce(0, +)), 1, accuracy: 1e-5)
            }
        }
    }

    func testSeedsDifferAndKernelIsAPathNotAPoint() throws {
        let a = try MotionKernel.generate(size: 31, intensity: 0.6, seed: 1)
        let b = try MotionKernel.generate(size: 31, intensity: 0.6, seed: 2)
        XCTAssertGreaterThan(TestSupport.maxAbsDiff(a.array, b.array), 1e-3)
        // a motion streak spreads its mass: several pixels carry ink, none carries most of it
        XCTAssertGreaterThan(a.array.filter { $0 > 1e-3 }.count, 10)
        XCTAssertLessThan(a.array.max() ?? 1, 0.5)
    }

    /// Higher intensity means longer, wigglier paths: more pixels carry ink on average.
    func testIntensityIncreasesSpread() throws {
        func inked(_ intensity: Double) throws -> Int {
            try (0..<8).reduce(0) { n, seed in
                n + (try MotionKernel.generate(size: 31, intensity: intensity, seed: UInt64(seed))).array.filter { $0 > 1e-3 }.count
            }
        }
        XCTAssertGreaterThan(try inked(1.0), try inked(0.0))
    }

    /// The path is centred on its length-weighted centroid, so the kernel's centre of mass is near the centre.
    func testKernelIsCentred() throws {
        let size = 31
        for seed: UInt64 in 0..<5 {
            let k = try MotionKernel.generate(size: size, intensity: 0.8, seed: seed)
            var r = 0.0, c = 0.0
            for i in 0..<size { for j in 0..<size { r += Double(k[i * size + j]) * Double(i); c += Double(k[i * size + j]) * Double(j) } }
            XCTAssertEqual(r, Double(size / 2), accuracy: 0.5)
            XCTAssertEqual(c, Double(size / 2), accuracy: 0.5)
        }
    }

    func testOperatorUsesGeneratedKernel() throws {
        let op = try MotionBlur(size: 9, intensity: 0.5, kernelSeed: 42, imageShape: [3, 16, 12])
        let k = try MotionKernel.generate(size: 9, intensity: 0.5, seed: 42)
        XCTAssertLessThan(TestSupport.maxAbsDiff(op.kernel.array, k.array), 1e-6)
        XCTAssertEqual(op.name, "motion_blur")
        XCTAssertThrowsError(try MotionBlur(size: 8, intensity: 0.5, kernelSeed: 1, imageShape: [3, 16, 16]))
        XCTAssertThrowsError(try MotionBlur(size: 9, intensity: 1.5, kernelSeed: 1, imageShape: [3, 16, 16]))
        XCTAssertThrowsError(try MotionBlur(size: 33, intensity: 0.5, kernelSeed: 1, imageShape: [3, 16, 16]))
    }
}
