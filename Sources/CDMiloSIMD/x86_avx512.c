// AVX-512 kernels: int8 with VNNI (vpdpbusd) and bf16 with AVX512_BF16 (vdpbf16ps), 4×4 register tiles.
// Compiled for those ISAs only inside this file; the dispatcher calls them only when CPUID + XCR0 say so.
#include "dmilo_simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))), \
                             apply_to = function)

// vpdpbusd multiplies UNSIGNED bytes of its first source by signed bytes of the second. Activations are stored
// signed (|q| ≤ 127); xor 0x80 turns q into q + 128 ∈ [1, 255], and Σ (q_b + 128)·q_a = ⟨a, b⟩ + 128·Σ q_a, so the
// weight-row sums `asum` (computed once when the weights are packed) remove the offset exactly.
static inline __attribute__((always_inline)) void q8_tile(int mr, int nr, long kp, const int8_t *a, const float *sa,
                                                          const int32_t *asum, const int8_t *b, const float *sb,
                                                          float *c, long ldc, int accumulate) {
    __m512i s[4][4];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) s[i][j] = _mm512_setzero_si512();
    const __m512i off = _mm512_set1_epi8((char)0x80);
    for (long t = 0; t < kp; t += 64) {
        __m512i bv[4];
        for (int j = 0; j < nr; j++) bv[j] = _mm512_xor_si512(_mm512_loadu_si512(b + j * kp + t), off);
        for (int i = 0; i < mr; i++) {
            __m512i av = _mm512_loadu_si512(a + i * kp + t);
            for (int j = 0; j < nr; j++) s[i][j] = _mm512_dpbusd_epi32(s[i][j], bv[j], av);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            int32_t d = _mm512_reduce_add_epi32(s[i][j]) - 128 * asum[i];
            float v = sa[i] * sb[j] * (float)d;
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
        }
}

void dmilo_gemm_q8_avx512vnni(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                              const int8_t *b, const float *sb, float *c, long ldc, int accumulate) {
    long j = 0;
#define T(MR, NR) q8_tile(MR, NR, kp, a + i * kp, sa + i, asum + i, b + j * kp, sb + j, c + i * ldc + j, ldc, accumulate)
    for (; j + 4 <= n; j += 4) {
        long i = 0;
        for (; i + 4 <= m; i += 4) T(4, 4);
        for (; i < m; i++) T(1, 4);
    }
    for (; j < n; j++) {
        long i = 0;
        for (; i + 4 <= m; i += 4) T(4, 1);
        for (; i < m; i++) T(1, 1);
    }
#undef T
}

#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16"))), \
                             apply_to = function)

// vdpbf16ps: 32 bf16 pairs → 16 f32 lanes, accumulated in f32.
static inline __attribute__((always_inline)) void bf16_tile(int mr, int nr, long kp, const uint16_t *a,
                                                            const uint16_t *b, float *c, long ldc, int accumulate) {
    __m512 s[4][4];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) s[i][j] = _mm512_setzero_ps();
    for (long t = 0; t < kp; t += 32) {
        __m512bh bv[4];
        for (int j = 0; j < nr; j++) bv[j] = (__m512bh)_mm512_loadu_si512(b + j * kp + t);
        for (int i = 0; i < mr; i++) {
            __m512bh av = (__m512bh)_mm512_loadu_si512(a + i * kp + t);
            for (int j = 0; j < nr; j++) s[i][j] = _mm512_dpbf16_ps(s[i][j], av, bv[j]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float v = _mm512_reduce_add_ps(s[i][j]);
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
        }
}

void dmilo_gemm_bf16_avx512bf16(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                                int accumulate) {
    long j = 0;
#define T(MR, NR) bf16_tile(MR, NR, kp, a + i * kp, b + j * kp, c + i * ldc + j, ldc, accumulate)
    for (; j + 4 <= n; j += 4) {
        long i = 0;
        for (; i + 4 <= m; i += 4) T(4, 4);
        for (; i < m; i++) T(1, 4);
    }
    for (; j < n; j++) {
        long i = 0;
        for (; i + 4 <= m; i += 4) T(4, 1);
        for (; i < m; i++) T(1, 1);
    }
#undef T
}

#pragma clang attribute pop
#endif
