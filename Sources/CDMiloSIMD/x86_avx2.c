// AVX2+FMA kernels (any x86-64 CPU since Haswell / Zen 1), compiled for that ISA only inside this file.
#include "dmilo_simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int32_t hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// One MR×NR tile of int8 dot products. vpmaddubsw multiplies unsigned by signed bytes, so (ggml's trick) it gets
// |b| and sign(a, b): |b|·sign(a,b) = a·b, and with |a|,|b| ≤ 127 the pairwise int16 sums cannot saturate.
static inline __attribute__((always_inline)) void q8_tile(int mr, int nr, long kp, const int8_t *a, const float *sa,
                                                          const int8_t *b, const float *sb, float *c, long ldc,
                                                          int accumulate) {
    __m256i s[4][2];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) s[i][j] = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    for (long t = 0; t < kp; t += 32) {
        __m256i bv[2], ab[2];
        for (int j = 0; j < nr; j++) {
            bv[j] = _mm256_loadu_si256((const __m256i *)(b + j * kp + t));
            ab[j] = _mm256_sign_epi8(bv[j], bv[j]);
        }
        for (int i = 0; i < mr; i++) {
            __m256i av = _mm256_loadu_si256((const __m256i *)(a + i * kp + t));
            for (int j = 0; j < nr; j++) {
                __m256i p = _mm256_maddubs_epi16(ab[j], _mm256_sign_epi8(av, bv[j]));
                s[i][j] = _mm256_add_epi32(s[i][j], _mm256_madd_epi16(p, ones));
            }
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float v = sa[i] * sb[j] * (float)hsum8i(s[i][j]);
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
        }
}

void dmilo_gemm_q8_avx2(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                        const int8_t *b, const float *sb, float *c, long ldc, int accumulate) {
    (void)asum;
    long j = 0;
    for (; j + 2 <= n; j += 2) {
        long i = 0;
        for (; i + 4 <= m; i += 4) q8_tile(4, 2, kp, a + i * kp, sa + i, b + j * kp, sb + j, c + i * ldc + j, ldc, accumulate);
        for (; i < m; i++) q8_tile(1, 2, kp, a + i * kp, sa + i, b + j * kp, sb + j, c + i * ldc + j, ldc, accumulate);
    }
    for (; j < n; j++) {
        long i = 0;
        for (; i + 4 <= m; i += 4) q8_tile(4, 1, kp, a + i * kp, sa + i, b + j * kp, sb + j, c + i * ldc + j, ldc, accumulate);
        for (; i < m; i++) q8_tile(1, 1, kp, a + i * kp, sa + i, b + j * kp, sb + j, c + i * ldc + j, ldc, accumulate);
    }
}

// bf16 on AVX2: widen to f32 (a shift) and FMA. Not faster than sgemm; it exists so bf16 results do not depend on
// whether the CPU has AVX512_BF16.
static inline __m256 bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

static inline __attribute__((always_inline)) void bf16_tile(int mr, int nr, long kp, const uint16_t *a,
                                                            const uint16_t *b, float *c, long ldc, int accumulate) {
    __m256 s[4][2];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) s[i][j] = _mm256_setzero_ps();
    for (long t = 0; t < kp; t += 8) {
        __m256 bv[2];
        for (int j = 0; j < nr; j++) bv[j] = bf16x8(b + j * kp + t);
        for (int i = 0; i < mr; i++) {
            __m256 av = bf16x8(a + i * kp + t);
            for (int j = 0; j < nr; j++) s[i][j] = _mm256_fmadd_ps(av, bv[j], s[i][j]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float v = hsum8(s[i][j]);
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
        }
}

void dmilo_gemm_bf16_avx2(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                          int accumulate) {
    long j = 0;
    for (; j + 2 <= n; j += 2) {
        long i = 0;
        for (; i + 4 <= m; i += 4) bf16_tile(4, 2, kp, a + i * kp, b + j * kp, c + i * ldc + j, ldc, accumulate);
        for (; i < m; i++) bf16_tile(1, 2, kp, a + i * kp, b + j * kp, c + i * ldc + j, ldc, accumulate);
    }
    for (; j < n; j++) {
        long i = 0;
        for (; i + 4 <= m; i += 4) bf16_tile(4, 1, kp, a + i * kp, b + j * kp, c + i * ldc + j, ldc, accumulate);
        for (; i < m; i++) bf16_tile(1, 1, kp, a + i * kp, b + j * kp, c + i * ldc + j, ldc, accumulate);
    }
}

#pragma clang attribute pop
#endif
