// Portable references: packing (quantisation / bf16 rounding) and the scalar GEMMs every fast path is tested
// against. Plain C11, so any architecture compiles them.
#include "dmilo_simd.h"

#include <math.h>
#include <string.h>

long dmilo_packed_k(long k) { return (k + 3) / 4 * 4; }
long dmilo_packed_n(long n) { return (n + 31) / 32 * 32; }

static inline int8_t q8_round(float v, float inv) {
    float r = nearbyintf(v * inv);  // round half to even, like cvtps2dq in the SIMD packers
    if (r > 127.f) r = 127.f;
    if (r < -127.f) r = -127.f;
    return (int8_t)r;
}

void dmilo_q8_pack_a(const float *x, long rows, long k, long ldx, int8_t *q, long kp, float *scale, int32_t *rowsum) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        int8_t *qr = q + r * kp;
        float amax = 0;
        for (long i = 0; i < k; i++) { float v = fabsf(xr[i]); amax = v > amax ? v : amax; }
        float inv = amax > 0 ? 127.f / amax : 0;
        int32_t sum = 0;
        for (long i = 0; i < k; i++) { qr[i] = q8_round(xr[i], inv); sum += qr[i]; }
        memset(qr + k, 0, (size_t)(kp - k));
        scale[r] = amax / 127.f;
        rowsum[r] = sum;
    }
}

void dmilo_q8_pack_b_ref(const float *x, long k, long ld, long j0, long n, int8_t *q, float *scale) {
    long kp = dmilo_packed_k(k), np = dmilo_packed_n(n);
    for (long j = 0; j < n; j++) scale[j] = 0;
    for (long i = 0; i < k; i++) {
        const float *xr = x + i * ld + j0;
        for (long j = 0; j < n; j++) { float v = fabsf(xr[j]); scale[j] = v > scale[j] ? v : scale[j]; }
    }
    memset(q, 0, (size_t)(kp * np));
    for (long i = 0; i < k; i++) {
        const float *xr = x + i * ld + j0;
        int8_t *dst = q + (i / 4) * np * 4 + (i % 4);
        for (long j = 0; j < n; j++) dst[j * 4] = q8_round(xr[j], scale[j] > 0 ? 127.f / scale[j] : 0);
    }
    for (long j = 0; j < n; j++) scale[j] /= 127.f;
}

void dmilo_gemm_q8_ref(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                       const int8_t *b, const float *sb, float *c, long ldc, int accumulate) {
    (void)asum;
    long np = dmilo_packed_n(n);
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            const int8_t *ai = a + i * kp;
            int32_t d = 0;
            for (long t = 0; t < kp; t++) d += (int32_t)ai[t] * (int32_t)b[((t / 4) * np + j) * 4 + t % 4];
            float v = (float)d * sa[i] * sb[j];
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v;
        }
}

static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void dmilo_bf16_pack_a(const float *x, long rows, long k, long ldx, uint16_t *out, long kp) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        uint16_t *o = out + r * kp;
        for (long i = 0; i < k; i++) o[i] = to_bf16(xr[i]);
        for (long i = k; i < kp; i++) o[i] = 0;
    }
}

void dmilo_bf16_pack_b_ref(const float *x, long k, long ld, long j0, long n, uint16_t *out) {
    long kp = dmilo_packed_k(k), np = dmilo_packed_n(n);
    memset(out, 0, (size_t)(kp * np) * 2);
    for (long i = 0; i < k; i++) {
        const float *xr = x + i * ld + j0;
        uint16_t *dst = out + (i / 2) * np * 2 + (i % 2);
        for (long j = 0; j < n; j++) dst[j * 2] = to_bf16(xr[j]);
    }
}

void dmilo_gemm_bf16_ref(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                         int accumulate) {
    long np = dmilo_packed_n(n);
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            const uint16_t *ai = a + i * kp;
            float s = 0;
            for (long t = 0; t < kp; t++) s += from_bf16(ai[t]) * from_bf16(b[((t / 2) * np + j) * 2 + t % 2]);
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;
        }
}

#if !defined(__x86_64__)
// Non-x86 builds: the x86 entry points exist (the Swift side and the tests name them) but run the reference;
// dmilo_cpu_features() is 0 there, so the dispatcher never selects them.
void dmilo_gemm_q8_avx2(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                        const int8_t *b, const float *sb, float *c, long ldc, int accumulate) {
    dmilo_gemm_q8_ref(m, n, kp, a, sa, asum, b, sb, c, ldc, accumulate);
}
void dmilo_gemm_q8_avx512vnni(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                              const int8_t *b, const float *sb, float *c, long ldc, int accumulate) {
    dmilo_gemm_q8_ref(m, n, kp, a, sa, asum, b, sb, c, ldc, accumulate);
}
void dmilo_gemm_bf16_avx2(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                          int accumulate) {
    dmilo_gemm_bf16_ref(m, n, kp, a, b, c, ldc, accumulate);
}
void dmilo_gemm_bf16_avx512bf16(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                                int accumulate) {
    dmilo_gemm_bf16_ref(m, n, kp, a, b, c, ldc, accumulate);
}
void dmilo_q8_pack_b_avx512(const float *x, long k, long ld, long j0, long n, int8_t *q, float *scale) {
    dmilo_q8_pack_b_ref(x, k, ld, j0, n, q, scale);
}
void dmilo_bf16_pack_b_avx512(const float *x, long k, long ld, long j0, long n, uint16_t *out) {
    dmilo_bf16_pack_b_ref(x, k, ld, j0, n, out);
}
#endif
