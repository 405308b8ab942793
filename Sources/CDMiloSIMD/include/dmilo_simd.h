// Low-precision GEMM kernels and run-time CPU feature dispatch for dmilo.
//
// The product is compiled for baseline x86-64 (SSE2); the fast paths below are compiled per function with
// `__attribute__((target(...)))` and chosen once at run time from CPUID + XGETBV (OS support for the AVX/AVX-512
// register state). Every fast path has the portable C reference beside it (`*_ref`), which is what non-x86 builds
// and `DMILO_ISA=baseline` use.
//
// Layouts (C[m×n] = A[m×k] · B[k×n]):
//   A (weights, packed once): row-major rows of kp = dmilo_packed_k(k) values, zero-padded; int8 rows carry one
//     scale (max|row| / 127) and their sum.
//   B (activations, packed per call from a float k×ld matrix): column-interleaved panels, np = dmilo_packed_n(n)
//     columns: int8 as [kp/4][np][4] (4 consecutive k of one column in one 32-bit lane, what vpdpbusd and
//     vpmaddubsw+vpmaddwd reduce), bf16 as [kp/2][np][2] (what vdpbf16ps reduces); int8 columns carry one scale.
//   So every SIMD lane of an accumulator is one output column: no horizontal sums, and packing is a vertical pass.
#ifndef DMILO_SIMD_H
#define DMILO_SIMD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CPU feature bits (a bit is only set when the OS also saves the registers it needs).
enum {
    DMILO_CPU_AVX2 = 1 << 0,        ///< AVX2 + FMA (+ OS YMM state)
    DMILO_CPU_AVX512 = 1 << 1,      ///< AVX-512 F/BW/DQ/VL (+ OS ZMM state)
    DMILO_CPU_AVX512VNNI = 1 << 2,  ///< AVX512_VNNI (vpdpbusd)
    DMILO_CPU_AVX512BF16 = 1 << 3,  ///< AVX512_BF16 (vdpbf16ps)
};

/// Features this CPU and OS support (CPUID + XGETBV), ignoring DMILO_ISA. 0 on non-x86 builds.
int dmilo_cpu_detected(void);
/// Features the kernels use: `dmilo_cpu_detected()` capped by the DMILO_ISA environment variable
/// (baseline | avx2 | avx512 | avx512vnni | avx512bf16 | native), read once.
int dmilo_cpu_features(void);
/// Re-reads DMILO_ISA and re-selects the kernels (tests only; not thread-safe against running kernels).
void dmilo_cpu_reset(void);
/// Name of the kernel the dispatcher chose for `kind` ("q8", "bf16", "pack"), e.g. "avx512vnni".
const char *dmilo_kernel_name(const char *kind);

/// k rounded up to 4 (the int8 lane group; bf16 uses pairs of it).
long dmilo_packed_k(long k);
/// n rounded up to 32 (the widest register tile).
long dmilo_packed_n(long n);

// ---- int8. Symmetric quantisation q = round(x / s), s = max|x| / 127, so |q| ≤ 127 (the AVX2 sign trick and
// the VNNI unsigned offset rely on it). ----

/// Quantises `rows` rows of length k (row stride ldx) into q[rows × kp], scale[rows], rowsum[rows] (Σ q).
void dmilo_q8_pack_a(const float *x, long rows, long k, long ldx, int8_t *q, long kp, float *scale, int32_t *rowsum);
/// Quantises columns j0..j0+n of the k×ld float matrix x, one scale per column, into the B layout (np columns,
/// padding zero).
void dmilo_q8_pack_b(const float *x, long k, long ld, long j0, long n, int8_t *q, float *scale);
void dmilo_q8_pack_b_ref(const float *x, long k, long ld, long j0, long n, int8_t *q, float *scale);
void dmilo_q8_pack_b_avx512(const float *x, long k, long ld, long j0, long n, int8_t *q, float *scale);

/// C[i*ldc + j] = (accumulate ? C : 0) + sa[i]·sb[j]·Σ_k a[i,k]·b[k,j] for i < m, j < n.
void dmilo_gemm_q8(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum, const int8_t *b,
                   const float *sb, float *c, long ldc, int accumulate);
void dmilo_gemm_q8_ref(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                       const int8_t *b, const float *sb, float *c, long ldc, int accumulate);
void dmilo_gemm_q8_avx2(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                        const int8_t *b, const float *sb, float *c, long ldc, int accumulate);
void dmilo_gemm_q8_avx512vnni(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                              const int8_t *b, const float *sb, float *c, long ldc, int accumulate);

// ---- bf16 (stored as uint16_t, round to nearest even), f32 accumulation ----

void dmilo_bf16_pack_a(const float *x, long rows, long k, long ldx, uint16_t *out, long kp);
void dmilo_bf16_pack_b(const float *x, long k, long ld, long j0, long n, uint16_t *out);
void dmilo_bf16_pack_b_ref(const float *x, long k, long ld, long j0, long n, uint16_t *out);
void dmilo_bf16_pack_b_avx512(const float *x, long k, long ld, long j0, long n, uint16_t *out);

void dmilo_gemm_bf16(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                     int accumulate);
void dmilo_gemm_bf16_ref(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                         int accumulate);
void dmilo_gemm_bf16_avx2(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                          int accumulate);
void dmilo_gemm_bf16_avx512bf16(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                                int accumulate);

#ifdef __cplusplus
}
#endif
#endif
