// Portable references: quantisation / bf16 packing (used on every CPU) and the scalar GEMMs every fast path is
// tested against. Plain C11, so any architecture compiles them.
#include "dmilo_simd.h"

#include <math.h>
#include <string.h>

long dmilo_packed_k(long k) { return (k + 63) / 64 * 64; }

static inline int8_t q8_round(float v, float inv) {
    float r = nearbyintf(v * inv);
    if (r > 127.f) r = 127.f;
    if (r < -127.f) r = -127.f;
    return (int8_t)r;
}

void dmilo_q8_quantize_rows(const float *x, long rows, long k, long ldx, int8_t *q, long kp, float *scale,
                            int32_t *rowsum) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        int8_t *qr = q + r * kp;
        float amax = 0;
        for (long i = 0; i < k; i++) { float v = fabsf(xr[i]); amax = v > amax ? v : amax; }
        float s = amax / 127.f, inv = amax > 0 ? 127.f / amax : 0;
        int32_t sum = 0;
        for (long i = 0; i < k; i++) { qr[i] = q8_round(xr[i], inv); sum += qr[i]; }
        memset(qr + k, 0, (size_t)(kp - k));
        scale[r] = s;
        if (rowsum) rowsum[r] = sum;
    }
}

void dmilo_q8_quantize_cols(const float *x, long k, long ld, long j0, long n, int8_t *q, long kp, float *scale) {
    // Column maxima first (a pass along rows, which vectorises), then the transposing write.
    for (long j = 0; j < n; j++) scale[j] = 0;
    for (long i = 0; i < k; i++) {
        const float *xr = x + i * ld + j0;
        for (long j = 0; j < n; j++) { float v = fabsf(xr[j]); scale[j] = v > scale[j] ? v : scale[j]; }
    }
    enum { T = 16 };
    float inv[T];
    for (long jb = 0; jb < n; jb += T) {
        long nb = n - jb < T ? n - jb : T;
        for (long j = 0; j < nb; j++) inv[j] = scale[jb + j] > 0 ? 127.f / scale[jb + j] : 0;
        for (long i = 0; i < k; i++) {
            const float *xr = x + i * ld + j0 + jb;
            for (long j = 0; j < nb; j++) q[(jb + j) * kp + i] = q8_round(xr[j], inv[j]);
        }
        for (long j = 0; j < nb; j++) memset(q + (jb + j) * kp + k, 0, (size_t)(kp - k));
    }
    for (long j = 0; j < n; j++) scale[j] /= 127.f;
}

void dmilo_gemm_q8_ref(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum,
                       const int8_t *b, const float *sb, float *c, long ldc, int accumulate) {
    (void)asum;
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            const int8_t *ai = a + i * kp, *bj = b + j * kp;
            int32_t d = 0;
            for (long t = 0; t < kp; t++) d += (int32_t)ai[t] * (int32_t)bj[t];
            float v = sa[i] * sb[j] * (float)d;
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

void dmilo_bf16_pack_rows(const float *x, long rows, long k, long ldx, uint16_t *out, long kp) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        uint16_t *o = out + r * kp;
        for (long i = 0; i < k; i++) o[i] = to_bf16(xr[i]);
        for (long i = k; i < kp; i++) o[i] = 0;
    }
}

void dmilo_bf16_pack_cols(const float *x, long k, long ld, long j0, long n, uint16_t *out, long kp) {
    enum { T = 16 };
    for (long jb = 0; jb < n; jb += T) {
        long nb = n - jb < T ? n - jb : T;
        for (long i = 0; i < k; i++) {
            const float *xr = x + i * ld + j0 + jb;
            for (long j = 0; j < nb; j++) out[(jb + j) * kp + i] = to_bf16(xr[j]);
        }
        for (long j = 0; j < nb; j++)
            for (long i = k; i < kp; i++) out[(jb + j) * kp + i] = 0;
    }
}

void dmilo_gemm_bf16_ref(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                         int accumulate) {
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            const uint16_t *ai = a + i * kp, *bj = b + j * kp;
            float s = 0;
            for (long t = 0; t < kp; t++) s += from_bf16(ai[t]) * from_bf16(bj[t]);
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
#endif
