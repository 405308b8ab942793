// The int8 / bf16 GEMM kernels: every fast path the CPU has against the portable C reference, and the low-precision
// results against an f64 product of the float inputs within error bounds derived from the rounding (not tuned).

import CDMiloSIMD
import XCTest

@testable import DMiloKernels

final class LowPrecisionGEMMTests: XCTestCase {
    /// Odd sizes on purpose: row tails (not a multiple of 8/4), column tails (not 16/32), k not a multiple of 4.
    let shapes: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (5, 7, 3), (13, 33, 70), (64, 130, 288), (37, 9, 577), (9, 65, 6)]

    func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64) -> [Float] {
        var r = SeededRandom(seed: seed)
        return (0..<(rows * cols)).map { _ in Float(r.gaussian()) * (r.uniform() < 0.1 ? 4 : 1) }
    }

    typealias Q8Kernel = (
        Int, Int, Int, UnsafePointer<Int8>?, UnsafePointer<Float>?, UnsafePointer<Int32>?,
        UnsafePointer<Int8>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int32
    ) -> Void
    typealias BF16Kernel = (
        Int, Int, Int, UnsafePointer<UInt16>?, UnsafePointer<UInt16>?, UnsafeMutablePointer<Float>?,
        Int, Int32
    ) -> Void

    /// Fast paths present on this CPU (ignoring DMILO_ISA: the tests exercise every path the hardware can run).
    var q8Paths: [(String, Q8Kernel)] {
        let f = Int(dmilo_cpu_detected())
        var p: [(String, Q8Kernel)] = []
        if f & DMILO_CPU_AVX2 != 0 { p.append(("avx2", dmilo_gemm_q8_avx2)) }
        if f & DMILO_CPU_AVX512VNNI != 0 { p.append(("avx512vnni", dmilo_gemm_q8_avx512vnni)) }
        return p
    }
    var bf16Paths: [(String, BF16Kernel)] {
        let f = Int(dmilo_cpu_detected())
        var p: [(String, BF16Kernel)] = []
        if f & DMILO_CPU_AVX2 != 0 { p.append(("avx2", dmilo_gemm_bf16_avx2)) }
        if f & DMILO_CPU_AVX512BF16 != 0 { p.append(("avx512bf16", dmilo_gemm_bf16_avx512bf16)) }
        return p
    }

    /// Packs a (m×k, rows) and b (k×n, columns) for int8 with the reference packer, checking the AVX-512 packer (if
    /// the CPU has it) writes the same bytes and scales.
    func packInt8(
        _ a: [Float], _ b: [Float], _ s: (m: Int, n: Int, k: Int)
    )
        -> (qa: [Int8], sa: [Float], asum: [Int32], qb: [Int8], sb: [Float], kp: Int)
    {
        let kp = dmilo_packed_k(s.k), np = dmilo_packed_n(s.n)
        var qa = [Int8](repeating: 0, count: s.m * kp), sa = [Float](repeating: 0, count: s.m)
        var asum = [Int32](repeating: 0, count: s.m)
        var qb = [Int8](repeating: 0, count: np * kp), sb = [Float](repeating: 0, count: s.n)
        dmilo_q8_pack_a(a, s.m, s.k, s.k, &qa, kp, &sa, &asum)
        dmilo_q8_pack_b_ref(b, s.k, s.n, 0, s.n, &qb, &sb)
        if Int(dmilo_cpu_detected()) & DMILO_CPU_AVX512 != 0 {
            var qb2 = [Int8](repeating: 1, count: np * kp), sb2 = [Float](repeating: 0, count: s.n)
            dmilo_q8_pack_b_avx512(b, s.k, s.n, 0, s.n, &qb2, &sb2)
            XCTAssertEqual(qb2, qb, "avx512 int8 packer \(s)")
            XCTAssertEqual(sb2, sb, "avx512 int8 packer scales \(s)")
        }
        return (qa, sa, asum, qb, sb, kp)
    }

    /// int8 fast paths compute the same integers as the reference and scale them the same way: bit-identical.
    func testInt8FastPathsMatchReferenceExactly() {
        if q8Paths.isEmpty { print("no x86 int8 fast path on this CPU; the reference alone runs") }
        for (si, s) in shapes.enumerated() {
            let a = randomMatrix(s.m, s.k, seed: UInt64(si)), b = randomMatrix(s.k, s.n, seed: UInt64(100 + si))
            let p = packInt8(a, b, s)
            XCTAssertEqual(p.asum, (0..<s.m).map { i in p.qa[(i * p.kp)..<(i * p.kp + p.kp)].reduce(0) { $0 + Int32($1) } })
            XCTAssertFalse(p.qa.contains(-128) || p.qb.contains(-128), "the sign trick / VNNI offset need |q| ≤ 127")
            for accumulate: Int32 in [0, 1] {
                var ref = [Float](repeating: 0.5, count: s.m * s.n)
                dmilo_gemm_q8_ref(s.m, s.n, p.kp, p.qa, p.sa, p.asum, p.qb, p.sb, &ref, s.n, accumulate)
                for (name, kernel) in q8Paths {
                    var c = [Float](repeating: 0.5, count: s.m * s.n)
                    kernel(s.m, s.n, p.kp, p.qa, p.sa, p.asum, p.qb, p.sb, &c, s.n, accumulate)
                    XCTAssertEqual(c, ref, "\(name) \(s) accumulate \(accumulate)")
                }
            }
        }
    }

    /// bf16 fast paths sum the same exact products (bf16×bf16 fits in f32) in another order: f32 rounding only.
    func testBF16FastPathsMatchReference() {
        for (si, s) in shapes.enumerated() {
            let a = randomMatrix(s.m, s.k, seed: UInt64(si)), b = randomMatrix(s.k, s.n, seed: UInt64(100 + si))
            let kp = dmilo_packed_k(s.k), np = dmilo_packed_n(s.n)
            var ha = [UInt16](repeating: 0, count: s.m * kp), hb = [UInt16](repeating: 0, count: np * kp)
            dmilo_bf16_pack_a(a, s.m, s.k, s.k, &ha, kp)
            dmilo_bf16_pack_b_ref(b, s.k, s.n, 0, s.n, &hb)
            if Int(dmilo_cpu_detected()) & DMILO_CPU_AVX512 != 0 {
                var hb2 = [UInt16](repeating: 7, count: np * kp)
                dmilo_bf16_pack_b_avx512(b, s.k, s.n, 0, s.n, &hb2)
                XCTAssertEqual(hb2, hb, "avx512 bf16 packer \(s)")
            }
            var ref = [Float](repeating: 0, count: s.m * s.n)
            dmilo_gemm_bf16_ref(s.m, s.n, kp, ha, hb, &ref, s.n, 0)
            let absSum = absProduct(a, b, s.m, s.n, s.k)
            for (name, kernel) in bf16Paths {
                var c = [Float](repeating: 0, count: s.m * s.n)
                kernel(s.m, s.n, kp, ha, hb, &c, s.n, 0)
                for i in 0..<c.count {
                    // two f32 summation orders of k terms: |Δ| ≤ 2·k·2⁻²⁴·Σ|aᵢbᵢ| (plus the bf16 input rounding slack)
                    let bound = 2 * Float(s.k) * 0x1p-24 * absSum[i] * 1.01 + 1e-30
                    XCTAssertLessThanOrEqual(abs(c[i] - ref[i]), bound, "\(name) \(s) entry \(i)")
                }
            }
        }
    }

    /// Through the public packing + dispatch: int8 error ≤ the rounding bound of symmetric per-row quantisation.
    /// With steps sa = max|a_i|/127 and sb = max|b_j|/127 each element is off by at most half a step, so
    /// |Δc_ij| ≤ (sa/2)·Σ|b| + (sb/2)·Σ|a| + k·sa·sb/4.
    func testInt8GEMMWithinQuantisationBound() {
        for (si, s) in shapes.enumerated() {
            let a = randomMatrix(s.m, s.k, seed: UInt64(10 + si)), b = randomMatrix(s.k, s.n, seed: UInt64(200 + si))
            let exact = f64Product(a, b, s.m, s.n, s.k)
            let packed = a.withUnsafeBufferPointer { PackedMatrix(.int8, rows: s.m, k: s.k, values: $0.baseAddress!, ld: s.k) }
            var c = [Float](repeating: 0, count: s.m * s.n)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: 4 * LowPrecisionGEMM.scratchCount(.int8, k: s.k, n: s.n), alignment: 64)
            defer { scratch.deallocate() }
            b.withUnsafeBufferPointer { LowPrecisionGEMM.gemm(packed, b: $0.baseAddress!, ldb: s.n, n: s.n, c: &c, ldc: s.n, accumulate: false, scratch: scratch) }
            var worst = 0.0
            for i in 0..<s.m {
                let rowA = a[(i * s.k)..<((i + 1) * s.k)]
                let sa = Double(rowA.map { abs($0) }.max()!) / 127, sumA = rowA.reduce(0.0) { $0 + Double(abs($1)) }
                for j in 0..<s.n {
                    let col = (0..<s.k).map { Double(abs(b[$0 * s.n + j])) }
                    let sb = col.max()! / 127, sumB = col.reduce(0, +)
                    let bound = sa / 2 * sumB + sb / 2 * sumA + Double(s.k) * sa * sb / 4 + 1e-5 * abs(exact[i * s.n + j])
                    let err = abs(Double(c[i * s.n + j]) - exact[i * s.n + j])
                    XCTAssertLessThanOrEqual(err, bound, "\(s) (\(i), \(j))")
                    worst = max(worst, err / bound)
                }
            }
            print("int8 \(s): worst error / bound = \(worst)")
        }
    }

    /// bf16 keeps 8 significant bits, so rounding is ≤ 2⁻⁸ relative per input:
    /// |Δc| ≤ (2·2⁻⁸ + 2⁻¹⁶)·Σ|a||b| + f32 accumulation (k + 2)·2⁻²⁴·Σ|a||b|.
    func testBF16GEMMWithinRoundingBound() {
        for (si, s) in shapes.enumerated() {
            let a = randomMatrix(s.m, s.k, seed: UInt64(20 + si)), b = randomMatrix(s.k, s.n, seed: UInt64(300 + si))
            let exact = f64Product(a, b, s.m, s.n, s.k), absSum = absProduct(a, b, s.m, s.n, s.k)
            let packed = a.withUnsafeBufferPointer { PackedMatrix(.bf16, rows: s.m, k: s.k, values: $0.baseAddress!, ld: s.k) }
            var c = [Float](repeating: 1, count: s.m * s.n)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: 4 * LowPrecisionGEMM.scratchCount(.bf16, k: s.k, n: s.n), alignment: 64)
            defer { scratch.deallocate() }
            b.withUnsafeBufferPointer { LowPrecisionGEMM.gemm(packed, b: $0.baseAddress!, ldb: s.n, n: s.n, c: &c, ldc: s.n, accumulate: true, scratch: scratch) }
            for i in 0..<c.count {
                let bound = (2 * 0x1p-8 + 0x1p-16 + Double(s.k + 2) * 0x1p-24) * Double(absSum[i]) + 1e-6
                XCTAssertLessThanOrEqual(abs(Double(c[i]) - 1 - exact[i]), bound, "\(s) entry \(i)")
            }
        }
    }

    /// DMILO_ISA caps the dispatch: `baseline` selects the portable kernels (what CI checks on every run), and the
    /// int8 results through the dispatcher are bit-identical to the native path's.
    func testForcedBaselineUsesPortableKernels() {
        let s = (m: 24, n: 40, k: 100)
        let a = randomMatrix(s.m, s.k, seed: 1), b = randomMatrix(s.k, s.n, seed: 2)
        func run(_ p: ComputePrecision) -> [Float] {
            let packed = a.withUnsafeBufferPointer { PackedMatrix(p, rows: s.m, k: s.k, values: $0.baseAddress!, ld: s.k) }
            var c = [Float](repeating: 0, count: s.m * s.n)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: 4 * LowPrecisionGEMM.scratchCount(p, k: s.k, n: s.n), alignment: 64)
            defer { scratch.deallocate() }
            b.withUnsafeBufferPointer { LowPrecisionGEMM.gemm(packed, b: $0.baseAddress!, ldb: s.n, n: s.n, c: &c, ldc: s.n, accumulate: false, scratch: scratch) }
            return c
        }
        let saved = getenv("DMILO_ISA").map { String(cString: $0) }
        defer {
            if let saved { setenv("DMILO_ISA", saved, 1) } else { unsetenv("DMILO_ISA") }
            CPUFeatures.reset()
        }
        unsetenv("DMILO_ISA"); CPUFeatures.reset()
        let native8 = run(.int8), native16 = run(.bf16)
        setenv("DMILO_ISA", "baseline", 1); CPUFeatures.reset()
        XCTAssertEqual(String(cString: dmilo_kernel_name("q8")), "scalar")
        XCTAssertEqual(String(cString: dmilo_kernel_name("bf16")), "scalar")
        XCTAssertEqual(String(cString: dmilo_kernel_name("pack")), "scalar")
        XCTAssertFalse(CPUFeatures.avx2)
        XCTAssertEqual(CPUFeatures.fastestFirst, [.f32], "auto must not pick a precision the CPU only emulates")
        XCTAssertEqual(run(.int8), native8)
        let base16 = run(.bf16)
        for i in 0..<base16.count { XCTAssertEqual(base16[i], native16[i], accuracy: 1e-4 * max(1, abs(native16[i]))) }
        if Int(dmilo_cpu_detected()) & DMILO_CPU_AVX2 != 0 {
            setenv("DMILO_ISA", "avx2", 1); CPUFeatures.reset()
            XCTAssertEqual(String(cString: dmilo_kernel_name("q8")), "avx2")
            XCTAssertFalse(CPUFeatures.avx512)
            XCTAssertEqual(run(.int8), native8)
        }
    }

    func f64Product(_ a: [Float], _ b: [Float], _ m: Int, _ n: Int, _ k: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for t in 0..<k { let v = Double(a[i * k + t]); for j in 0..<n { c[i * n + j] += v * Double(b[t * n + j]) } } }
        return c
    }

    func absProduct(_ a: [Float], _ b: [Float], _ m: Int, _ n: Int, _ k: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for t in 0..<k { let v = abs(a[i * k + t]); for j in 0..<n { c[i * n + j] += v * abs(b[t * n + j]) } } }
        return c
    }
}
