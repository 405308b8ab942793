// AVX2+FMA kernels (any x86-64 CPU since Haswell / Zen 1), compiled for that ISA only inside this file.
// Register tile: 4 rows of A × 16 columns of B (two YMM). Used where AVX-512 VNNI / BF16 are missing, and so
// that int8 / bf16 results never depend on which of those the CPU has.
#include "dmilo_simd.h"
#include "row_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

/// Stores columns [0, nv) of two 8-lane rows (the tile's tail columns go through a buffer).
static inline void store16(float *c, __m256 v0, __m256 v1, long nv, int accumulate) {
    if (nv >= 16) {
        if (accumulate) { v0 = _mm256_add_ps(_mm256_loadu_ps(c), v0); v1 = _mm256_add_ps(_mm256_loadu_ps(c + 8), v1); }
        _mm256_storeu_ps(c, v0);
        _mm256_storeu_ps(c + 8, v1);
        return;
    }
    float t[16];
    _mm256_storeu_ps(t, v0);
    _mm256_storeu_ps(t + 8, v1);
    for (long j = 0; j < nv; j++) c[j] = accumulate ? c[j] + t[j] : t[j];
}

// vpmaddubsw multiplies unsigned by signed bytes, so (ggml's trick) it gets |b| and sign(a, b): |b|·sign(a,b) = a·b,
// and with |a|, |b| ≤ 127 the pairwise int16 sums cannot saturate; vpmaddwd then adds the pairs of each lane.
// (`asum` is unused: no unsigned offset to remove here.)
static inline __attribute__((always_inline)) void q8_tile(int mr, long kp, long np, const int8_t *a, const float *sa,
                                                          const int32_t *asum, const int8_t *b, const float *sb,
                                                          float *c, long ldc, long nv, int accumulate) {
    (void)asum;
    __m256i s[4][2];
    for (int r = 0; r < mr; r++) s[r][0] = s[r][1] = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    for (long g = 0; g < kp / 4; g++) {
        const int8_t *bp = b + g * np * 4;
        __m256i b0 = _mm256_loadu_si256((const __m256i *)bp), b1 = _mm256_loadu_si256((const __m256i *)(bp + 32));
        __m256i ab0 = _mm256_sign_epi8(b0, b0), ab1 = _mm256_sign_epi8(b1, b1);
        for (int r = 0; r < mr; r++) {
            __m256i av = _mm256_set1_epi32(load4(a + r * kp + g * 4));
            __m256i p0 = _mm256_maddubs_epi16(ab0, _mm256_sign_epi8(av, b0));
            __m256i p1 = _mm256_maddubs_epi16(ab1, _mm256_sign_epi8(av, b1));
            s[r][0] = _mm256_add_epi32(s[r][0], _mm256_madd_epi16(p0, ones));
            s[r][1] = _mm256_add_epi32(s[r][1], _mm256_madd_epi16(p1, ones));
        }
    }
    float sbt[16] = {0};
    for (long j = 0; j < (nv < 16 ? nv : 16); j++) sbt[j] = sb[j];
    __m256 sb0 = _mm256_loadu_ps(sbt), sb1 = _mm256_loadu_ps(sbt + 8);
    for (int r = 0; r < mr; r++) {
        __m256 sar = _mm256_set1_ps(sa[r]);
        __m256 v0 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s[r][0]), sar), sb0);
        __m256 v1 = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s[r][1]), sar), sb1);
        store16(c + r * ldc, v0, v1, nv, accumulate);
    }
}

DMILO_Q8_GEMM(dmilo_gemm_q8_avx2, 4, 16)

// bf16 on AVX2: a bf16 pair in a 32-bit lane widens to two floats by a shift and a mask; then two FMAs in the
// reference's order (even k, then odd k). Not faster than sgemm: it exists so bf16 runs everywhere.
static inline __attribute__((always_inline)) void bf16_tile(int mr, long kp, long np, const uint16_t *a,
                                                            const uint16_t *b, float *c, long ldc, long nv,
                                                            int accumulate) {
    __m256 s[4][2];
    for (int r = 0; r < mr; r++) s[r][0] = s[r][1] = _mm256_setzero_ps();
    const __m256i hiMask = _mm256_set1_epi32((int)0xffff0000);
    for (long g = 0; g < kp / 2; g++) {
        const uint16_t *bp = b + g * np * 2;
        __m256i b0 = _mm256_loadu_si256((const __m256i *)bp), b1 = _mm256_loadu_si256((const __m256i *)(bp + 16));
        __m256 b0e = _mm256_castsi256_ps(_mm256_slli_epi32(b0, 16)), b0o = _mm256_castsi256_ps(_mm256_and_si256(b0, hiMask));
        __m256 b1e = _mm256_castsi256_ps(_mm256_slli_epi32(b1, 16)), b1o = _mm256_castsi256_ps(_mm256_and_si256(b1, hiMask));
        for (int r = 0; r < mr; r++) {
            __m256i av = _mm256_set1_epi32(load4(a + r * kp + g * 2));
            __m256 ae = _mm256_castsi256_ps(_mm256_slli_epi32(av, 16)), ao = _mm256_castsi256_ps(_mm256_and_si256(av, hiMask));
            s[r][0] = _mm256_fmadd_ps(ao, b0o, _mm256_fmadd_ps(ae, b0e, s[r][0]));
            s[r][1] = _mm256_fmadd_ps(ao, b1o, _mm256_fmadd_ps(ae, b1e, s[r][1]));
        }
    }
    for (int r = 0; r < mr; r++) store16(c + r * ldc, s[r][0], s[r][1], nv, accumulate);
}

DMILO_BF16_GEMM(dmilo_gemm_bf16_avx2, 4, 16)

#pragma clang attribute pop
#endif
