// Row tiling and entry points shared by the SIMD GEMM files (internal header, not part of the module's API).
#ifndef DMILO_ROW_TILES_H
#define DMILO_ROW_TILES_H

#include <stdint.h>
#include <string.h>

/// Four packed bytes (one broadcast group of a row of A) as an int32, whatever their alignment.
static inline int32_t load4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

// Runs T(MR) over rows [0, m) of one column block: tiles of MR_MAX rows (4 or 8, the register budget of the ISA),
// then one tile each of 4, 2 and 1 for the remainder. T reads the current first row from `i`; MR is a constant so
// each tile function is specialised for it.
#define DMILO_FOR_ROW_TILES(m, MR_MAX, T)                                                                    \
    do {                                                                                                    \
        long i = 0;                                                                                         \
        for (; i + (MR_MAX) <= (m); i += (MR_MAX)) T(MR_MAX);                                               \
        if ((MR_MAX) > 4 && i + 4 <= (m)) { T(4); i += 4; }                                                 \
        if (i + 2 <= (m)) { T(2); i += 2; }                                                                 \
        if (i < (m)) T(1);                                                                                  \
    } while (0)

// The GEMM drivers' loop nest: column blocks of NB (the tile's vector width; `j` and the valid width `nv` are in
// scope for T), each cut into row tiles as above.
#define DMILO_FOR_TILES(m, n, MR_MAX, NB, T)                                                                 \
    for (long j = 0; j < (n); j += (NB)) {                                                                  \
        long nv = (n) - j;                                                                                  \
        DMILO_FOR_ROW_TILES(m, MR_MAX, T);                                                                  \
    }

// The int8 and bf16 GEMM entry points of one ISA file (declared in dmilo_simd.h): that file's `q8_tile` /
// `bf16_tile` over MR_MAX × NB register tiles.
#define DMILO_Q8_TILE(MR)                                                                                    \
    q8_tile(MR, kp, np, a + i * kp, sa + i, asum + i, b + j * 4, sb + j, c + i * ldc + j, ldc, nv, accumulate)
#define DMILO_Q8_GEMM(NAME, MR_MAX, NB)                                                                      \
    void NAME(long m, long n, long kp, const int8_t *a, const float *sa, const int32_t *asum, const int8_t *b,  \
              const float *sb, float *c, long ldc, int accumulate) {                                        \
        long np = dmilo_packed_n(n);                                                                        \
        DMILO_FOR_TILES(m, n, MR_MAX, NB, DMILO_Q8_TILE);                                                    \
    }
#define DMILO_BF16_TILE(MR) bf16_tile(MR, kp, np, a + i * kp, b + j * 2, c + i * ldc + j, ldc, nv, accumulate)
#define DMILO_BF16_GEMM(NAME, MR_MAX, NB)                                                                    \
    void NAME(long m, long n, long kp, const uint16_t *a, const uint16_t *b, float *c, long ldc, int accumulate) { \
        long np = dmilo_packed_n(n);                                                                        \
        DMILO_FOR_TILES(m, n, MR_MAX, NB, DMILO_BF16_TILE);                                                  \
    }

#endif
