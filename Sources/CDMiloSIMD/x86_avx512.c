// AVX-512 kernels: int8 GEMM with VNNI (vpdpbusd), bf16 GEMM with AVX512_BF16 (vdpbf16ps), and the B packers.
// Register tile: 8 rows of A (broadcast 4 bytes / 2 bf16 at a time) × 32 columns of B (two ZMM), 16 accumulators.
// Compiled for those ISAs only inside this file; the dispatcher calls them only when CPUID + XCR0 say so.
#include "dmilo_simd.h"
#include "row_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 "avx2,fma,avx512f,avx512bw,avx512dq,avx512vl"

/// Mask of the first `valid` of 16 lanes (0 to all).
static inline __mmask16 lanes(long valid) { return valid >= 16 ? (__mmask16)0xffff : valid <= 0 ? 0 : (__mmask16)((1u << valid) - 1); }

/// Stores (or adds to C, with `accumulate`) columns [0, nv) of one tile row of two 16-lane halves.
static inline __attribute__((target(AVX512), always_inline)) void store32(float *c, __m512 v0, __m512 v1, long nv,
                                                                        int accumulate) {
    __mmask16 m0 = lanes(nv), m1 = lanes(nv - 16);
    if (accumulate) {
        v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c), v0);
        v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + 16), v1);
    }
    _mm512_mask_storeu_ps(c, m0, v0);
    _mm512_mask_storeu_ps(c + 16, m1, v1);
}

#pragma clang attribute push(__attribute__((target(AVX512 ",avx512vnni"))), apply_to = function)

// vpdpbusd multiplies UNSIGNED bytes of one source by signed bytes of the other. Activations (B) are stored signed
// (|q| ≤ 127); xor 0x80 turns q into q + 128 ∈ [1, 255], and Σ (q_b + 128)·q_a = ⟨a, b⟩ + 128·Σ q_a, so the
// weight-row sums `asum` (computed once when the weights are packed) remove the offset exactly.
static inline __attribute__((always_inline)) void q8_tile(int mr, long kp, long np, const int8_t *a, const float *sa,
                                                          const int32_t *asum, const int8_t *b, const float *sb,
                                                          float *c, long ldc, long nv, int accumulate) {
    __m512i s[8][2];
    for (int r = 0; r < mr; r++) s[r][0] = s[r][1] = _mm512_setzero_si512();
    const __m512i off = _mm512_set1_epi8((char)0x80);
    for (long g = 0; g < kp / 4; g++) {
        const int8_t *bp = b + g * np * 4;
        __m512i b0 = _mm512_xor_si512(_mm512_loadu_si512(bp), off);
        __m512i b1 = _mm512_xor_si512(_mm512_loadu_si512(bp + 64), off);
        for (int r = 0; r < mr; r++) {
            __m512i av = _mm512_set1_epi32(load4(a + r * kp + g * 4));
            s[r][0] = _mm512_dpbusd_epi32(s[r][0], b0, av);
            s[r][1] = _mm512_dpbusd_epi32(s[r][1], b1, av);
        }
    }
    __mmask16 m0 = lanes(nv), m1 = lanes(nv - 16);
    __m512 sb0 = _mm512_maskz_loadu_ps(m0, sb), sb1 = _mm512_maskz_loadu_ps(m1, sb + 16);
    for (int r = 0; r < mr; r++) {
        __m512i comp = _mm512_set1_epi32(128 * asum[r]);
        __m512 sar = _mm512_set1_ps(sa[r]);
        __m512 v0 = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s[r][0], comp)), sar), sb0);
        __m512 v1 = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s[r][1], comp)), sar), sb1);
        store32(c + r * ldc, v0, v1, nv, accumulate);
    }
}

DMILO_Q8_GEMM(dmilo_gemm_q8_avx512vnni, 8, 32)

// Quantises columns j0..j0+n of x (k×ld) into the [kp/4][np][4] layout, 16 columns at a time: four rows are
// scaled, rounded (cvtps2dq: half to even, as the reference's nearbyintf), narrowed (vpmovsdb) and byte-interleaved.
void dmilo_q8_pack_b_avx512(const float *x, long k, long ld, long j0, long n, int8_t *q, float *scale) {
    long kp = dmilo_packed_k(k), np = dmilo_packed_n(n);
    const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (long j = 0; j < n; j += 16) _mm512_mask_storeu_ps(scale + j, lanes(n - j), _mm512_setzero_ps());
    for (long i = 0; i < k; i++) {
        const float *xr = x + i * ld + j0;
        for (long j = 0; j < n; j += 16) {
            __mmask16 mj = lanes(n - j);
            __m512 v = _mm512_and_ps(_mm512_maskz_loadu_ps(mj, xr + j), absMask);
            _mm512_mask_storeu_ps(scale + j, mj, _mm512_max_ps(_mm512_maskz_loadu_ps(mj, scale + j), v));
        }
    }
    // Groups of four rows outer, columns inner: the rows stream sequentially and so do the packed writes.
    for (long g = 0; g < kp / 4; g++) {
        for (long j = 0; j < np; j += 16) {
            __mmask16 mj = lanes(n - j);
            __m512 amax = _mm512_maskz_loadu_ps(mj, scale + j);
            __mmask16 pos = _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_GT_OQ);
            __m512 inv = _mm512_maskz_div_ps(pos, _mm512_set1_ps(127.f), amax);
            __m128i r[4];
            for (int t = 0; t < 4; t++) {
                long i = g * 4 + t;
                if (i < k && mj) {
                    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mj, x + i * ld + j0 + j), inv);
                    __m512i iv = _mm512_cvtps_epi32(v);
                    iv = _mm512_max_epi32(_mm512_min_epi32(iv, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
                    r[t] = _mm512_cvtsepi32_epi8(iv);
                } else {
                    r[t] = _mm_setzero_si128();
                }
            }
            __m128i p01lo = _mm_unpacklo_epi8(r[0], r[1]), p01hi = _mm_unpackhi_epi8(r[0], r[1]);
            __m128i p23lo = _mm_unpacklo_epi8(r[2], r[3]), p23hi = _mm_unpackhi_epi8(r[2], r[3]);
            int8_t *dst = q + (g * np + j) * 4;
            _mm_storeu_si128((__m128i *)dst, _mm_unpacklo_epi16(p01lo, p23lo));
            _mm_storeu_si128((__m128i *)(dst + 16), _mm_unpackhi_epi16(p01lo, p23lo));
            _mm_storeu_si128((__m128i *)(dst + 32), _mm_unpacklo_epi16(p01hi, p23hi));
            _mm_storeu_si128((__m128i *)(dst + 48), _mm_unpackhi_epi16(p01hi, p23hi));
        }
    }
    for (long j = 0; j < n; j += 16) {
        __mmask16 mj = lanes(n - j);
        _mm512_mask_storeu_ps(scale + j, mj, _mm512_div_ps(_mm512_maskz_loadu_ps(mj, scale + j), _mm512_set1_ps(127.f)));
    }
}

// float → bf16 with round to nearest even in integer arithmetic (no AVX512_BF16 needed), [kp/2][np][2] layout.
void dmilo_bf16_pack_b_avx512(const float *x, long k, long ld, long j0, long n, uint16_t *out) {
    long kp = dmilo_packed_k(k), np = dmilo_packed_n(n);
    const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    for (long g = 0; g < kp / 2; g++) {
        for (long j = 0; j < np; j += 16) {
            __mmask16 mj = lanes(n - j);
            __m256i r[2];
            for (int t = 0; t < 2; t++) {
                long i = g * 2 + t;
                if (i < k && mj) {
                    __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(mj, x + i * ld + j0 + j));
                    u = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
                    r[t] = _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16));
                } else {
                    r[t] = _mm256_setzero_si256();
                }
            }
            __m256i lo = _mm256_unpacklo_epi16(r[0], r[1]), hi = _mm256_unpackhi_epi16(r[0], r[1]);
            uint16_t *dst = out + (g * np + j) * 2;
            _mm256_storeu_si256((__m256i *)dst, _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(dst + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
    }
}

#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target(AVX512 ",avx512bf16"))), apply_to = function)

// vdpbf16ps: each f32 lane (one column) accumulates a[2g]·b[2g] + a[2g+1]·b[2g+1].
static inline __attribute__((always_inline)) void bf16_tile(int mr, long kp, long np, const uint16_t *a,
                                                            const uint16_t *b, float *c, long ldc, long nv,
                                                            int accumulate) {
    __m512 s[8][2];
    for (int r = 0; r < mr; r++) s[r][0] = s[r][1] = _mm512_setzero_ps();
    for (long g = 0; g < kp / 2; g++) {
        const uint16_t *bp = b + g * np * 2;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp), b1 = (__m512bh)_mm512_loadu_si512(bp + 32);
        for (int r = 0; r < mr; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32(load4(a + r * kp + g * 2));
            s[r][0] = _mm512_dpbf16_ps(s[r][0], av, b0);
            s[r][1] = _mm512_dpbf16_ps(s[r][1], av, b1);
        }
    }
    for (int r = 0; r < mr; r++) store32(c + r * ldc, s[r][0], s[r][1], nv, accumulate);
}

DMILO_BF16_GEMM(dmilo_gemm_bf16_avx512bf16, 8, 32)

#pragma clang attribute pop
#endif
