// Low-precision GEMMs for the convolutions' forward and input VJP: weights packed once (int8 with one scale per row,
// or bf16), the float activation matrix quantised / rounded on the fly (one scale per column) into the kernels'
// column-interleaved layout (Sources/CDMiloSIMD/include/dmilo_simd.h), f32 output.
//
// Why one scale per weight row (output channel) and per activation column rather than ggml's Q8_0 blocks of 32:
// with a scale per 32-element block every 32 (ymm) or 64 (zmm) multiply-adds need an int→float conversion, a scale
// product and an FMA besides the vpdpbusd, which leaves int8 at the f32 FMA rate for compute-bound GEMMs (ggml's
// blocks pay off for matrix-vector products, which are bandwidth-bound). With one scale per row the whole dot
// product accumulates in int32 and is scaled once: measured 2-3.3× OpenBLAS sgemm (Haswell kernels) on one Zen 4
// core including the activation packing, for the UNet's GEMM shapes (bf16: 1.5-2×). Q8_0 checkpoints are
// re-scaled per row when packed (no float copy of the model is kept).

import CDMiloSIMD

#if canImport(Glibc)
import Glibc
#endif

/// Arithmetic of the convolution GEMMs. GroupNorm, softmax, SiLU, the time embedding and all reductions stay f32.
public enum ComputePrecision: String, Sendable, CaseIterable {
    case f32, bf16, int8
}

/// The CPU features the SIMD kernels detected (CPUID + XGETBV, capped by DMILO_ISA) and the kernels they chose.
public enum CPUFeatures {
    public static var avx2: Bool { has(DMILO_CPU_AVX2) }
    public static var avx512: Bool { has(DMILO_CPU_AVX512) }
    public static var avx512vnni: Bool { has(DMILO_CPU_AVX512VNNI) }
    public static var avx512bf16: Bool { has(DMILO_CPU_AVX512BF16) }
    private static func has(_ bit: Int) -> Bool { Int(dmilo_cpu_features()) & bit != 0 }

    /// The same flags ignoring DMILO_ISA (what the hardware and OS offer).
    public static var detected: [String] {
        let f = Int(dmilo_cpu_detected())
        let names: [(Int, String)] = [
            (DMILO_CPU_AVX2, "avx2+fma"), (DMILO_CPU_AVX512, "avx512"),
            (DMILO_CPU_AVX512VNNI, "avx512vnni"), (DMILO_CPU_AVX512BF16, "avx512bf16"),
        ]
        return names.filter { f & $0.0 != 0 }.map { $0.1 }
    }
    public static var forcedISA: String? { getenv("DMILO_ISA").map { String(cString: $0) } }

    /// One line: "kernels int8 avx512vnni, bf16 avx512bf16, f32 OpenBLAS Haswell (cpu avx2+fma avx512 …)".
    public static var summary: String {
        let cpu = detected.isEmpty ? "baseline" : detected.joined(separator: " ")
        let forced = forcedISA.map { ", DMILO_ISA=\($0)" } ?? ""
        return "kernels int8 \(String(cString: dmilo_kernel_name("q8"))), bf16 \(String(cString: dmilo_kernel_name("bf16"))), "
            + "pack \(String(cString: dmilo_kernel_name("pack"))), "
            + "f32 OpenBLAS \(BLAS.coreName) (cpu: \(cpu)\(forced))"
    }

    /// The fastest precision the kernels run natively here, slowest last: int8 needs VNNI (on AVX2 the
    /// vpmaddubsw route is no faster than sgemm), bf16 needs AVX512_BF16.
    public static var fastestFirst: [ComputePrecision] {
        var out: [ComputePrecision] = []
        if avx512vnni { out.append(.int8) }
        if avx512bf16 { out.append(.bf16) }
        return out + [.f32]
    }

    /// Re-reads DMILO_ISA (tests).
    public static func reset() { dmilo_cpu_reset() }
}

/// A weight matrix [rows × k] in a low-precision layout: int8 rows with one scale and the row sum each, or bf16 rows;
/// rows padded with zeros to `kp` (a multiple of 4).
public final class PackedMatrix: @unchecked Sendable {
    public let precision: ComputePrecision
    public let rows, k, kp: Int
    let data: UnsafeMutableRawPointer
    let scales: UnsafeMutablePointer<Float>
    let sums: UnsafeMutablePointer<Int32>

    /// Packs `rows` rows of `k` floats (row stride `ld`). `precision` must be .int8 or .bf16.
    public init(_ precision: ComputePrecision, rows: Int, k: Int, values: UnsafePointer<Float>, ld: Int) {
        precondition(precision != .f32)
        self.precision = precision; self.rows = rows; self.k = k
        kp = dmilo_packed_k(k)
        data = .allocate(byteCount: Swift.max(1, rows * kp * (precision == .int8 ? 1 : 2)), alignment: 64)
        scales = .allocate(capacity: Swift.max(1, rows))
        sums = .allocate(capacity: Swift.max(1, rows))
        if precision == .int8 {
            dmilo_q8_pack_a(values, rows, k, ld, data.assumingMemoryBound(to: Int8.self), kp, scales, sums)
        } else {
            dmilo_bf16_pack_a(values, rows, k, ld, data.assumingMemoryBound(to: UInt16.self), kp)
            scales.initialize(repeating: 1, count: Swift.max(1, rows))
            sums.initialize(repeating: 0, count: Swift.max(1, rows))
        }
    }

    deinit { data.deallocate(); scales.deallocate(); sums.deallocate() }
}

/// C (+)= A · B for a packed A [m × k] and a float B [k × n] (row stride ldb), C [m × n] row stride ldc.
public enum LowPrecisionGEMM {
    /// Bytes of scratch `gemm` needs for n columns of B with inner dimension k.
    public static func scratchBytes(_ p: ComputePrecision, k: Int, n: Int) -> Int {
        // each worker's panel is padded to 32 columns: at most one extra panel per worker
        let np = dmilo_packed_n(n) + 32 * Threading.count
        return np * dmilo_packed_k(k) * (p == .int8 ? 1 : 2) + np * 4 + 128
    }

    /// Floats of scratch (`scratchBytes` rounded up).
    public static func scratchCount(_ p: ComputePrecision, k: Int, n: Int) -> Int { (scratchBytes(p, k: k, n: n) + 3) / 4 }

    /// Splits the columns over `Threading.count` workers in multiples of 32; each packs its own columns of B into
    /// `scratch` (int8: quantised with one scale per column; bf16: rounded) and runs the dispatched kernel on them.
    public static func gemm(
        _ a: PackedMatrix, b: UnsafePointer<Float>, ldb: Int, n: Int, c: UnsafeMutablePointer<Float>,
        ldc: Int, accumulate: Bool, scratch: UnsafeMutableRawPointer
    ) {
        let m = a.rows, k = a.k, kp = a.kp
        if m == 0 || n == 0 { return }
        let base = (Int(bitPattern: scratch) + 63) & ~63
        let panels = UnsafeMutableRawPointer(bitPattern: base)!
        let esize = a.precision == .int8 ? 1 : 2
        let chunks = Swift.max(1, Swift.min(Threading.count, n / 64))
        let sb = (panels + (dmilo_packed_n(n) + 32 * chunks) * kp * esize).assumingMemoryBound(to: Float.self)
        let cP = SharedPointer(c), bP = SharedPointer(b), sbP = SharedPointer(sb)
        let qP = SharedPointer(panels.assumingMemoryBound(to: UInt8.self))
        let acc: Int32 = accumulate ? 1 : 0
        Parallel.forEach(chunks, work: m * n * k) { t in
            let j0 = (n * t / chunks) & ~31, j1 = t == chunks - 1 ? n : (n * (t + 1) / chunks) & ~31
            let nn = j1 - j0
            if nn <= 0 { return }
            // worker t's panel starts after the padded panels of the workers before it
            let q = UnsafeMutableRawPointer(qP.p + (j0 + 32 * t) * kp * esize)
            if a.precision == .int8 {
                let q8 = q.assumingMemoryBound(to: Int8.self)
                dmilo_q8_pack_b(bP.p, k, ldb, j0, nn, q8, sbP.p + j0 + 32 * t)
                dmilo_gemm_q8(
                    m, nn, kp, a.data.assumingMemoryBound(to: Int8.self), a.scales, a.sums, q8,
                    sbP.p + j0 + 32 * t, cP.p + j0, ldc, acc)
            } else {
                let h = q.assumingMemoryBound(to: UInt16.self)
                dmilo_bf16_pack_b(bP.p, k, ldb, j0, nn, h)
                dmilo_gemm_bf16(m, nn, kp, a.data.assumingMemoryBound(to: UInt16.self), h, cP.p + j0, ldc, acc)
            }
        }
    }
}
