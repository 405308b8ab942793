// Low-precision GEMM kernels and run-time CPU feature dispatch for dmilo.
//
// The product is compiled for baseline x86-64 (SSE2); the fast paths below are compiled per function with
// `__attribute__((target(...)))` and chosen once at run time from CPUID + XGETBV (OS support for the AVX/AVX-512
// register state). Every fast path has the portable C reference beside it (`*_ref`), which is what non-x86 builds
// and `DMILO_ISA=baseline` use.
#ifndef DMILO_SIMD_H
#define DMILO_SIMD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CPU feature bits (cumulative meaning: a bit is only set when the OS saves the registers it needs).
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
/// Name of the kernel the dispatcher chose for `kind` ("q8", "bf16", "f32"), e.g. "avx512vnni".
const char *dmilo_kernel_name(const char *kind);

/// Bytes (int8) / elements (bf16) of one packed row: k rounded up to 64 (one ZMM register of int8, two of bf16).
long dmilo_packed_k(long k);

// ---- int8: C[m×n] (+)= (sa_i · sb_j) · Σ_k a[i,k]·b[j,k], rows of a and b packed to kp = dmilo_packed_k(k) ----
// Symmetric per-row quantisation: q = round(x / s), s = max|x| / 127, so |q| ≤ 127 (needed by the AVX2 sign trick
// and by the VNNI unsigned offset). Padding columns are 0.

/// Quantises `rows` rows of length k (row stride ldx) into q[rows × kp], scale[rows], rowsum[rows] (Σ q; may be NULL).
void dmilo_q8_quantize_rows(const float *x, long rows, long k, long ldx, int8_t *q, long kp, float *scale,
                            int32_t *rowsum);
/// Quantises the n columns j0..j0+n of a k×ld matrix x (column j becomes packed row j − j0): q[n × kp], scale[n].
void dmilo_q8_quantize_cols(const float *x, long k, long ld, long j0, long n, int8_t *q, long kp, float *scale);

/// C[i*ldc + j] = (accumulate ? C : 0) + sa[i]·sb[j]·⟨a_i, b_j⟩ for i < m, j < n. asum = Σ_k a[i,k] (VNNI offset).
void dmilo_gemm_q8(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum, const int8_t *b,
                   const float *sb, float *c, long ldc, int accumulate);
void dmilo_gemm_q8_ref(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                       const int8_t *b, const float *sb, float *c, long ldc, int accumulate);
void dmilo_gemm_q8_avx2(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                        const int8_t *b, const float *sb, float *c, long ldc, int accumulate);
void dmilo_gemm_q8_avx512vnni(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                              const int8_t *b, const float *sb, float *c, long ldc, int accumulate);

// ---- bf16: C[m×n] (+)= Σ_k a[i,k]·b[j,k] with f32 accumulation; bf16 stored as uint16_t, rows padded to kp ----

/// Round-to-nearest-even float → bf16 of `rows` rows (stride ldx) into out[rows × kp].
void dmilo_bf16_pack_rows(const float *x, long rows, long k, long ldx, uint16_t *out, long kp);
/// Columns j0..j0+n of a k×ld matrix → packed rows out[n × kp].
void dmilo_bf16_pack_cols(const float *x, long k, long ld, long j0, long n, uint16_t *out, long kp);

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
