// CPUID / XGETBV feature detection and the dispatch table (ggml-cpu's approach: detect once, one pointer per op).
#include "dmilo_simd.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return 0;
    uint64_t xcr0 = xgetbv0();
    // XMM (bit 1) + YMM (bit 2) state; AVX-512 also needs opmask, ZMM_Hi256 and Hi16_ZMM (bits 5-7).
    int ymmOS = (xcr0 & 0x6) == 0x6, zmmOS = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    unsigned b7, c7, d7, a7;
    __cpuid_count(7, 0, a7, b7, c7, d7);
    int f = 0;
    int avx2 = (b7 >> 5) & 1;
    if (ymmOS && avx2 && fma) f |= DMILO_CPU_AVX2;
    int avx512f = (b7 >> 16) & 1, avx512dq = (b7 >> 17) & 1, avx512bw = (b7 >> 30) & 1, avx512vl = (b7 >> 31) & 1;
    if ((f & DMILO_CPU_AVX2) && zmmOS && avx512f && avx512dq && avx512bw && avx512vl) {
        f |= DMILO_CPU_AVX512;
        if ((c7 >> 11) & 1) f |= DMILO_CPU_AVX512VNNI;
        unsigned a71, b71, c71, d71;
        __cpuid_count(7, 1, a71, b71, c71, d71);
        if ((a71 >> 5) & 1) f |= DMILO_CPU_AVX512BF16;
    }
    return f;
}
#else
static int detect(void) { return 0; }
#endif

static int detected = -1, features = -1;

int dmilo_cpu_detected(void) {
    if (detected < 0) detected = detect();
    return detected;
}

static int cap_from_env(void) {
    const char *s = getenv("DMILO_ISA");
    if (!s || !*s || !strcmp(s, "native")) return -1;
    if (!strcmp(s, "baseline") || !strcmp(s, "scalar")) return 0;
    if (!strcmp(s, "avx2")) return DMILO_CPU_AVX2;
    if (!strcmp(s, "avx512")) return DMILO_CPU_AVX2 | DMILO_CPU_AVX512;
    if (!strcmp(s, "avx512vnni")) return DMILO_CPU_AVX2 | DMILO_CPU_AVX512 | DMILO_CPU_AVX512VNNI;
    if (!strcmp(s, "avx512bf16")) return DMILO_CPU_AVX2 | DMILO_CPU_AVX512 | DMILO_CPU_AVX512BF16;
    return -1;  // unknown names mean "native"; `dmilo inspect` / `bench unet` print DMILO_ISA beside the choice
}

typedef void (*q8_fn)(long, long, long, const int8_t *, const float *, const int32_t *, const int8_t *, const float *,
                      float *, long, int);
typedef void (*bf16_fn)(long, long, long, const uint16_t *, const uint16_t *, float *, long, int);

typedef void (*q8_pack_fn)(const float *, long, long, long, long, int8_t *, float *);
typedef void (*bf16_pack_fn)(const float *, long, long, long, long, uint16_t *);

static q8_fn q8_kernel = dmilo_gemm_q8_ref;
static bf16_fn bf16_kernel = dmilo_gemm_bf16_ref;
static q8_pack_fn q8_pack = dmilo_q8_pack_b_ref;
static bf16_pack_fn bf16_pack = dmilo_bf16_pack_b_ref;
static const char *q8_name = "scalar", *bf16_name = "scalar", *pack_name = "scalar";

static void select_kernels(void) {
    int cap = cap_from_env();
    features = dmilo_cpu_detected() & (cap < 0 ? ~0 : cap);
    q8_kernel = dmilo_gemm_q8_ref; q8_name = "scalar";
    bf16_kernel = dmilo_gemm_bf16_ref; bf16_name = "scalar";
    q8_pack = dmilo_q8_pack_b_ref; bf16_pack = dmilo_bf16_pack_b_ref; pack_name = "scalar";
#if defined(__x86_64__)
    if (features & DMILO_CPU_AVX512VNNI) { q8_kernel = dmilo_gemm_q8_avx512vnni; q8_name = "avx512vnni"; }
    else if (features & DMILO_CPU_AVX2) { q8_kernel = dmilo_gemm_q8_avx2; q8_name = "avx2"; }
    if (features & DMILO_CPU_AVX512BF16) { bf16_kernel = dmilo_gemm_bf16_avx512bf16; bf16_name = "avx512bf16"; }
    else if (features & DMILO_CPU_AVX2) { bf16_kernel = dmilo_gemm_bf16_avx2; bf16_name = "avx2"; }
    if (features & DMILO_CPU_AVX512) {
        q8_pack = dmilo_q8_pack_b_avx512; bf16_pack = dmilo_bf16_pack_b_avx512; pack_name = "avx512";
    }
#endif
}

int dmilo_cpu_features(void) {
    if (features < 0) select_kernels();
    return features;
}

void dmilo_cpu_reset(void) { select_kernels(); }

const char *dmilo_kernel_name(const char *kind) {
    dmilo_cpu_features();
    if (!strcmp(kind, "q8")) return q8_name;
    if (!strcmp(kind, "bf16")) return bf16_name;
    if (!strcmp(kind, "pack")) return pack_name;
    return "openblas";
}

void dmilo_gemm_q8(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum, const int8_t *b,
                   const float *sb, float *c, long ldc, int accumulate) {
    dmilo_cpu_features();
    q8_kernel(m, n, kp, a, sa, asum, b, sb, c, ldc, accumulate);
}

void dmilo_gemm_bf16(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc,
                     int accumulate) {
    dmilo_cpu_features();
    bf16_kernel(m, n, kp, a, b, c, ldc, accumulate);
}

void dmilo_q8_pack_b(const float *x, long k, long ld, long j0, long n, int8_t *q, float *scale) {
    dmilo_cpu_features();
    q8_pack(x, k, ld, j0, n, q, scale);
}

void dmilo_bf16_pack_b(const float *x, long k, long ld, long j0, long n, uint16_t *out) {
    dmilo_cpu_features();
    bf16_pack(x, k, ld, j0, n, out);
}
